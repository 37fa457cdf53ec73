// Command hello serves a small JSON API that says which Cloud Run region answered.
//
// It is meant to run in several regions behind one global load balancer: GET /
// reports the region of the instance that served the request, GET /health/ reports
// whether the instance is serving or draining. All configuration comes from the
// environment; run "hello -h" for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// version is stamped at link time (-ldflags "-X main.version=..."); when it is empty
// the version comes from the build information Go embeds in the binary.
var version string

// These bound every connection, so that a slow or silent client cannot hold a
// goroutine and a file descriptor for ever (slowloris).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10

	// cloudRunGracePeriod is how long Cloud Run waits between SIGTERM and SIGKILL.
	cloudRunGracePeriod = 10 * time.Second
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "hello: %v\n", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until it has shut down. It returns nil after a
// clean shutdown on SIGTERM, SIGINT or the cancellation of ctx, and an error for bad
// configuration, a port that cannot be listened on, or a shutdown that ran out of time.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	flags.SetOutput(stderr)
	showVersion := flags.Bool("version", false, "print the version and exit")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [-version]\n\n%s\n", args[0], usage)
	}
	if err := flags.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: configuration comes from the environment (see -h)", flags.Arg(0))
	}
	if *showVersion {
		fmt.Fprintln(stdout, buildVersion())
		return nil
	}

	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("bad configuration:\n%w", err)
	}
	logger := newLogger(stdout, cfg.logLevel)
	if cfg.service != "" && cfg.shutdownDelay+cfg.shutdownTimeout > cloudRunGracePeriod {
		logger.Warn("SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT is longer than Cloud Run waits before SIGKILL",
			"shutdown_delay", cfg.shutdownDelay.String(), "shutdown_timeout", cfg.shutdownTimeout.String(),
			"cloud_run_grace", cloudRunGracePeriod.String())
	}

	// Listen before anything else can fail slowly, so that a port that is taken is
	// an error from run at once rather than a log line from a goroutine.
	tcp, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.port)))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", cfg.port, err)
	}
	ln := newDrainListener(tcp)
	defer ln.Close()

	// Connections that arrive during the lookup wait in the kernel's accept queue.
	loc := lookupLocation(ctx, logger, cfg)

	var draining atomic.Bool
	srv := &http.Server{
		Handler:           newServer(logger, cfg, loc, &draining),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         ln.track,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("listening",
		"port", ln.Addr().(*net.TCPAddr).Port,
		"region", loc.region,
		"version", buildVersion(),
		"https_redirect", cfg.httpsRedirect)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// From here on a second SIGINT or SIGTERM ends the process at once.
	stop()
	return shutdown(logger, cfg, srv, ln, &draining, serveErr)
}

// shutdown drains srv: it reports draining for cfg.shutdownDelay, stops accepting,
// lets every request that has begun finish within cfg.shutdownTimeout, and closes
// what is left after that. http.Server.Shutdown alone would drop a request whose
// headers are still arriving, so the listener is drained by hand first.
func shutdown(logger *slog.Logger, cfg config, srv *http.Server, ln *drainListener, draining *atomic.Bool, serveErr <-chan error) error {
	draining.Store(true)
	logger.Info("shutting down",
		"shutdown_delay", cfg.shutdownDelay.String(),
		"shutdown_timeout", cfg.shutdownTimeout.String())
	if cfg.shutdownDelay > 0 {
		logger.Info("draining: /health/ answers 503 while still serving", "for", cfg.shutdownDelay.String())
		time.Sleep(cfg.shutdownDelay)
	}

	ctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := ln.Close(); err != nil {
		logger.Warn("closing the listener", "error", err)
	}
	if err := <-serveErr; !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("serve stopped with an unexpected error", "error", err)
	}
	logger.Info("stopped accepting connections; waiting for open requests", "open_connections", ln.open())

	left := ln.drain(ctx)
	err := srv.Shutdown(ctx)
	if left > 0 || err != nil {
		cut := ln.open()
		srv.Close()
		logger.Error("shutdown timed out; closed the remaining connections",
			"shutdown_timeout", cfg.shutdownTimeout.String(), "closed_connections", cut)
		return fmt.Errorf("shutdown: %d connection(s) still busy after SHUTDOWN_TIMEOUT=%s were closed", cut, cfg.shutdownTimeout)
	}
	logger.Info("stopped")
	return nil
}

// buildVersion returns the version stamped at link time or, failing that, the
// module version and VCS revision Go records in the binary.
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}

const usage = `Configuration (environment variables):
  PORT              port to listen on, all interfaces (default 8080; Cloud Run sets it)
  REGION            region to report; wins over the metadata server
  K_SERVICE         Cloud Run service name (set by Cloud Run); reported by GET /
  K_REVISION        Cloud Run revision (set by Cloud Run); reported by GET /
  HTTPS_REDIRECT    true/false: redirect X-Forwarded-Proto: http to https
                    (default: true when K_SERVICE is set)
  SHUTDOWN_TIMEOUT  time in-flight requests get after the delay (default 8s)
  SHUTDOWN_DELAY    after SIGTERM, keep serving this long with /health/ at 503 (default 0)
  LOG_LEVEL         debug, info, warn or error (default info; debug logs every request)
  CORS_ORIGINS      comma-separated origins allowed by CORS (default *)
  GCE_METADATA_HOST host:port of a substitute metadata server (for tests)`

// config is everything run takes from the environment.
type config struct {
	port            int
	region          string
	service         string
	revision        string
	httpsRedirect   bool
	shutdownTimeout time.Duration
	shutdownDelay   time.Duration
	logLevel        slog.Level
	corsOrigins     []string
	metadataHost    string
}

// validRegion reports whether s can be a region name such as europe-west1 or
// local-dev: 1 to 63 letters, digits, '-', '_' or '.', starting with a letter or digit.
func validRegion(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '-' || c == '_' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// loadConfig reads and validates the configuration. It reports every bad variable
// at once, each by name, so that one failed deploy shows all that needs fixing.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{
		port:            8080,
		region:          getenv("REGION"),
		service:         getenv("K_SERVICE"),
		revision:        getenv("K_REVISION"),
		shutdownTimeout: 8 * time.Second,
		logLevel:        slog.LevelInfo,
		corsOrigins:     []string{"*"},
		metadataHost:    getenv("GCE_METADATA_HOST"),
	}
	cfg.httpsRedirect = cfg.service != ""

	var errs []error
	bad := func(name, value, want string) {
		errs = append(errs, fmt.Errorf("%s=%q: want %s", name, value, want))
	}
	if v := getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			bad("PORT", v, "a port number from 0 to 65535")
		} else {
			cfg.port = p
		}
	}
	if cfg.region != "" && !validRegion(cfg.region) {
		bad("REGION", cfg.region, "a region name such as europe-west1 (letters, digits, '-', '_', '.')")
	}
	if v := getenv("HTTPS_REDIRECT"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("HTTPS_REDIRECT", v, "true or false")
		} else {
			cfg.httpsRedirect = b
		}
	}
	if v := getenv("SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("SHUTDOWN_TIMEOUT", v, "a positive duration such as 8s or 500ms")
		} else {
			cfg.shutdownTimeout = d
		}
	}
	if v := getenv("SHUTDOWN_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad("SHUTDOWN_DELAY", v, "a duration such as 0, 2s or 500ms")
		} else {
			cfg.shutdownDelay = d
		}
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		level, ok := parseLevel(v)
		if !ok {
			bad("LOG_LEVEL", v, "debug, info, warn or error")
		} else {
			cfg.logLevel = level
		}
	}
	if v := getenv("CORS_ORIGINS"); v != "" {
		origins, err := parseOrigins(v)
		if err != nil {
			bad("CORS_ORIGINS", v, err.Error())
		} else {
			cfg.corsOrigins = origins
		}
	}
	return cfg, errors.Join(errs...)
}

// parseLevel reads a LOG_LEVEL value, in any case.
func parseLevel(v string) (slog.Level, bool) {
	switch strings.ToLower(v) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// parseOrigins splits a comma-separated CORS_ORIGINS value and checks that each entry
// is "*" or an origin with a scheme, such as https://example.com or https://*.example.com.
func parseOrigins(v string) ([]string, error) {
	var origins []string
	for _, o := range strings.Split(v, ",") {
		o = strings.TrimSpace(o)
		switch {
		case o == "":
			return nil, errors.New("origins separated by commas, with none empty")
		case o == "*":
		case strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://"):
			if rest := o[strings.Index(o, "://")+3:]; rest == "" || strings.ContainsAny(rest, "/?#") {
				return nil, fmt.Errorf("origins like https://example.com (scheme and host only), not %q", o)
			}
		default:
			return nil, fmt.Errorf("origins like https://example.com or *, not %q", o)
		}
		origins = append(origins, o)
	}
	return origins, nil
}
