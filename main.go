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
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// version is stamped at link time (-ldflags "-X main.version=..."); when it is empty
// the version comes from the build information Go embeds in the binary.
var version string

// msgDelayOnCloudRun is the start-up warning for SHUTDOWN_DELAY on Cloud Run.
const msgDelayOnCloudRun = "SHUTDOWN_DELAY is set on Cloud Run: for that long a stopping instance answers /health/ with 503, " +
	"so its readiness probe fails, and in a large scale-in Cloud Run service health could count the region unhealthy; " +
	"Cloud Run stops sending requests at SIGTERM by itself, so leave SHUTDOWN_DELAY unset there"

// These bound every connection, so that a slow or silent client cannot hold a
// goroutine and a file descriptor for ever (slowloris). They are http.Server's
// own timeouts (newServer). The three that can hold a request are shorter than
// SHUTDOWN_TIMEOUT's default, so that a slow client at SIGTERM is cut off by its
// limit before shutdown gives up on it, and the exit stays clean.
const (
	readHeaderTimeout = 5 * time.Second   // a request's first byte to the end of its headers; a new connection's accept, too
	readTimeout       = 5 * time.Second   // the same, to the end of the body (the API reads none: net/http discards it)
	writeTimeout      = 5 * time.Second   // the end of the headers to the end of the answer
	idleTimeout       = 120 * time.Second // the end of an answer to the next request's first bytes
	maxHeaderBytes    = 64 << 10

	// cloudRunGracePeriod is how long Cloud Run waits between SIGTERM and SIGKILL.
	cloudRunGracePeriod = 10 * time.Second
)

// timeouts are http.Server's limits on slow and silent clients: run serves
// with the constants above, tests with shorter ones.
type timeouts struct {
	readHeader, read, write, idle time.Duration
}

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

	// Configuration comes from the environment; the only flags are -version and -h.
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	flags.SetOutput(stderr)
	showVersion := flags.Bool("version", false, "print the version and exit")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [-version]\n\n%s", args[0], usage())
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
	// /health/ is both the drain signal (503 during SHUTDOWN_DELAY, for balancers
	// that health-check) and, on Cloud Run, the readiness probe that service health
	// counts. Cloud Run needs no drain signal: it stops sending requests at SIGTERM.
	// A delay there would only make stopping instances look unready.
	if cfg.service != "" && cfg.shutdownDelay > 0 {
		logger.Warn(msgDelayOnCloudRun, "shutdown_delay", cfg.shutdownDelay.String())
	}

	// Listen before anything else can fail slowly, so that a port that is taken is
	// an error from run at once rather than a log line from a goroutine.
	tcp, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.port)))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", cfg.port, err)
	}
	ln := newDrainListener(tcp, readHeaderTimeout)
	defer ln.Close()

	// Only a region lookup (K_SERVICE set, REGION not) delays the first answer;
	// connections that arrive meanwhile wait in the kernel's accept queue. The
	// project lookup runs beside the server and ends with it at the latest.
	lookupCtx, cancelLookup := context.WithCancel(ctx)
	loc, waitLookup := lookupLocation(lookupCtx, logger, cfg)
	defer func() {
		cancelLookup()
		if waitLookup != nil {
			waitLookup()
		}
	}()

	var draining atomic.Bool
	limits := timeouts{readHeader: readHeaderTimeout, read: readTimeout, write: writeTimeout, idle: idleTimeout}
	srv := newServer(newHandler(logger, cfg, loc, &draining), ln, limits, logger)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("listening",
		"port", ln.Addr().(*net.TCPAddr).Port,
		"region", loc.region,
		"version", buildVersion(),
		"https_redirect", cfg.httpsRedirect,
		// What the Go runtime took from the platform: GOMAXPROCS from the CPU
		// limit of the cgroup, the memory limit from GOMEMLIMIT only (-1: none).
		"gomaxprocs", runtime.GOMAXPROCS(0),
		"gomemlimit", memoryLimit())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// From here on a second SIGINT or SIGTERM ends the process at once.
	stop()
	return shutdown(logger, cfg, srv, ln, &draining, serveErr)
}

// memoryLimit is the Go runtime's soft memory limit in bytes (GOMEMLIMIT), or -1
// when there is none. The runtime does not read the cgroup's memory limit by
// itself, so on Cloud Run this is what the deploy sets.
func memoryLimit() int64 {
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		return limit
	}
	return -1
}

// newServer returns the http.Server that serves h on ln, with limits t on slow
// and silent clients.
func newServer(h http.Handler, ln *drainListener, t timeouts, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         ln.track,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
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
