package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/compute/metadata"
)

// metadataTimeout bounds the start-up questions to the metadata server, so that an
// instance whose metadata server does not answer still starts, reporting "unknown".
const metadataTimeout = 2 * time.Second

// location is where this instance runs. It is found once, at start-up.
type location struct {
	// region is what GET / reports: REGION, the metadata server's answer,
	// "unknown" when that failed, or "local" off Cloud Run.
	region string
	// projectID is the Google Cloud project, used to tie log lines to traces;
	// empty off Cloud Run or when the metadata server did not say.
	projectID string
}

// lookupLocation finds the region and project. REGION wins; otherwise, on Cloud Run
// (K_SERVICE is set) the metadata server is asked; otherwise the region is "local"
// and nothing is asked of the network, so that a local start stays instant.
func lookupLocation(ctx context.Context, logger *slog.Logger, cfg config) location {
	if cfg.service == "" {
		if cfg.region != "" {
			return location{region: cfg.region}
		}
		return location{region: "local"}
	}

	client := newMetadataClient(cfg.metadataHost)
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()

	region, projectID := cfg.region, ""
	var wg sync.WaitGroup
	if region == "" {
		wg.Go(func() {
			r, err := lookupRegion(ctx, client)
			if err != nil {
				logger.Warn("cannot find the region; reporting \"unknown\" (set REGION to override)", "error", err)
				r = "unknown"
			}
			region = r
		})
	}
	wg.Go(func() {
		p, err := client.GetWithContext(ctx, "project/project-id")
		if err != nil {
			logger.Warn("cannot find the project id; log lines will not be tied to traces", "error", err)
			return
		}
		projectID = strings.TrimSpace(p)
	})
	wg.Wait()
	return location{region: region, projectID: projectID}
}

// lookupRegion asks the metadata server for instance/region, which answers
// projects/PROJECT_NUMBER/regions/REGION, and returns REGION.
func lookupRegion(ctx context.Context, client *metadata.Client) (string, error) {
	v, err := client.GetWithContext(ctx, "instance/region")
	if err != nil {
		return "", fmt.Errorf("metadata instance/region: %w", err)
	}
	v = strings.TrimSpace(v)
	i := strings.LastIndex(v, "/regions/")
	if !strings.HasPrefix(v, "projects/") || i < 0 || !validRegion(v[i+len("/regions/"):]) {
		return "", fmt.Errorf("metadata instance/region: unexpected answer %q, want projects/NUMBER/regions/REGION", v)
	}
	return v[i+len("/regions/"):], nil
}

// newMetadataClient returns a client of the metadata server that connects to host
// (host or host:port) when host is set. The official client reads GCE_METADATA_HOST
// from the process environment by itself; routing its connections to the value run
// was given as well means the two agree in production, while each test can point
// its own server at its own fake without touching the process environment.
func newMetadataClient(host string) *metadata.Client {
	if host != "" {
		if _, _, err := net.SplitHostPort(host); err != nil {
			host = net.JoinHostPort(host, "80")
		}
	}
	dialer := &net.Dialer{Timeout: metadataTimeout}
	transport := &http.Transport{
		// No Proxy: the metadata server is link-local and must never be reached
		// through HTTP_PROXY.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host != "" {
				addr = host
			}
			return dialer.DialContext(ctx, network, addr)
		},
		// Two questions at start-up and none after: leave no idle connection behind.
		DisableKeepAlives: true,
	}
	return metadata.NewWithOptions(&metadata.Options{Client: &http.Client{Transport: transport}})
}
