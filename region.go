package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/compute/metadata"
)

// metadataTimeout bounds the region question to the metadata server, asked before
// the first answer when REGION is not set, so that an instance whose metadata
// server does not answer still starts, reporting "unknown".
const metadataTimeout = 2 * time.Second

// projectLookupTimeout bounds the project question, which runs beside the server
// and delays nothing: long enough for a metadata server that is slow at start
// (20 s and more have been seen), short enough to say in the first minute that
// log lines will not be tied to traces.
const projectLookupTimeout = time.Minute

// location is where this instance runs.
type location struct {
	// region is what GET / reports: REGION, the metadata server's answer,
	// "unknown" when that failed, or "local" off Cloud Run. It is known before
	// the first answer.
	region string
	// project ties log lines to traces. nil: never known (off Cloud Run).
	project *project
}

// project is the Google Cloud project id that ties log lines to traces. It is
// given (GOOGLE_CLOUD_PROJECT) or found by a lookup that runs beside the server;
// until the lookup answers, log lines carry no trace link, and the first such
// line with a trace header is preceded by a warning that says so.
type project struct {
	id      atomic.Pointer[string]
	pending atomic.Bool // the lookup has not ended
	noted   atomic.Bool // the "not known yet" warning was written
	logger  *slog.Logger
}

// knownProject is a project given by the deploy.
func knownProject(id string) *project {
	p := &project{}
	p.id.Store(&id)
	return p
}

// traceAttrs returns the fields that tie a log line to the trace of a request
// with header h (see the function of that name), or nil when there is no trace or
// no project yet.
func (p *project) traceAttrs(h http.Header) []slog.Attr {
	if p == nil {
		return nil
	}
	if id := p.id.Load(); id != nil {
		return traceAttrs(*id, h)
	}
	if p.pending.Load() && traceAttrs("-", h) != nil && !p.noted.Swap(true) {
		p.logger.Warn(msgProjectNotYet)
	}
	return nil
}

// msgProjectNotYet is written once, before the first log line that would have had
// a trace link had the project id been known.
const msgProjectNotYet = "the project id is not known yet (the metadata server has not answered): log lines have no trace link until it is"

// lookup asks the metadata server for the project id and records it. It returns
// when it has an answer, when the metadata server failed, after
// projectLookupTimeout, or when ctx ends (shutdown), saying which in a log line
// except for the last.
func (p *project) lookup(ctx context.Context, client *metadata.Client) {
	defer p.pending.Store(false)
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, projectLookupTimeout)
	defer cancel()
	v, err := client.GetWithContext(lctx, "project/project-id")
	v = strings.TrimSpace(v)
	switch {
	case ctx.Err() != nil:
	case err == nil && v == "":
		err = errors.New("metadata project/project-id: empty answer")
		fallthrough
	case err != nil:
		p.logger.Warn("cannot find the project id; log lines will not be tied to traces (set GOOGLE_CLOUD_PROJECT to give it)", "error", err)
	default:
		p.id.Store(&v)
		p.logger.Info("found the project id; log lines are tied to traces from now on",
			"project", v, "after", time.Since(start).Round(time.Millisecond).String())
	}
}

// lookupLocation finds the region, and the project unless GOOGLE_CLOUD_PROJECT
// gives it. REGION wins; otherwise, on Cloud Run (K_SERVICE is set) the metadata
// server is asked, for at most metadataTimeout; otherwise the region is "local".
// Off Cloud Run nothing is asked of the network, so that a local start stays
// instant. On Cloud Run the project is asked by a goroutine that lookupLocation
// starts and that ends with ctx at the latest; wait, when it is not nil, waits for
// it.
func lookupLocation(ctx context.Context, logger *slog.Logger, cfg config) (loc location, wait func()) {
	loc.region = cfg.region
	if cfg.projectID != "" {
		loc.project = knownProject(cfg.projectID)
	}
	if cfg.service == "" {
		if loc.region == "" {
			loc.region = "local"
		}
		return loc, nil
	}

	client := newMetadataClient(cfg.metadataHost)
	if loc.project == nil {
		loc.project = &project{logger: logger}
		loc.project.pending.Store(true)
		done := make(chan struct{})
		go func() {
			defer close(done)
			loc.project.lookup(ctx, client)
		}()
		wait = func() { <-done }
	}
	if loc.region == "" {
		rctx, cancel := context.WithTimeout(ctx, metadataTimeout)
		defer cancel()
		r, err := lookupRegion(rctx, client)
		if err != nil {
			logger.Warn("cannot find the region; reporting \"unknown\" (set REGION to give it)", "error", err)
			r = "unknown"
		}
		loc.region = r
	}
	return loc, wait
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
		// At most two questions, each once: leave no idle connection behind.
		DisableKeepAlives: true,
	}
	return metadata.NewWithOptions(&metadata.Options{Client: &http.Client{Transport: transport}})
}
