// Package failover shows, on one machine, what a global load balancer does when
// the nearest region goes down: three instances of the service, one per region,
// behind HAProxy with the first as primary and the others as backups. It sends
// SIGTERM to the primary while a probe watches the answers move to the next
// region, and counts the requests that failed on the way (there should be none).
package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/example/hello/internal/probe"
)

// Options configure a demo.
type Options struct {
	// Binary is the hello server to run.
	Binary string
	// Regions are the instances' regions: the first is the primary, the others
	// backups in order of preference.
	Regions []string
	// ShutdownDelay is the primary's SHUTDOWN_DELAY: how long it keeps serving,
	// with /health/ at 503, after SIGTERM.
	ShutdownDelay time.Duration
	// Before is how long the probe runs before SIGTERM; After how long it runs
	// once the primary has exited.
	Before, After time.Duration
	// Rate is the probe's requests a second.
	Rate float64
	// Out receives the probe's line a second and the demo's events.
	Out io.Writer
}

// Report is what a demo saw.
type Report struct {
	Probe   probe.Result
	Windows []probe.Window
	// PrimaryExit is the primary's exit error: nil for status 0.
	PrimaryExit error
	// Logs holds each instance's output, by region.
	Logs map[string]string
}

// DefaultRegions returns three regions in the order a client in Europe would
// prefer them.
func DefaultRegions() []string { return []string{"europe-west1", "europe-west4", "us-east1"} }

// Run runs the demo. dir holds HAProxy's configuration.
func Run(ctx context.Context, o Options, dir string) (Report, error) {
	if len(o.Regions) < 2 {
		return Report{}, errors.New("failover needs at least two regions")
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		return Report{}, errors.New("haproxy is not installed (Debian: apt-get install haproxy)")
	}
	out := &lockedWriter{w: o.Out}
	rep := Report{Logs: map[string]string{}}

	var instances []*instance
	defer func() {
		for _, in := range instances {
			in.stop()
			rep.Logs[in.region] = in.logs.String()
		}
	}()
	for i, region := range o.Regions {
		delay := time.Duration(0)
		if i == 0 {
			delay = o.ShutdownDelay
		}
		in, err := startInstance(o.Binary, region, delay)
		if err != nil {
			return rep, err
		}
		instances = append(instances, in)
	}

	frontend, err := freePort()
	if err != nil {
		return rep, err
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, haproxyConfig(frontend, instances), 0o644); err != nil {
		return rep, err
	}
	var haproxyLogs bytes.Buffer
	haproxy := exec.Command("haproxy", "-db", "-f", cfg)
	haproxy.Stdout, haproxy.Stderr = &haproxyLogs, &haproxyLogs
	if err := haproxy.Start(); err != nil {
		return rep, fmt.Errorf("starting haproxy: %w", err)
	}
	defer func() {
		haproxy.Process.Signal(syscall.SIGTERM)
		haproxy.Wait()
	}()

	url := fmt.Sprintf("http://127.0.0.1:%d/", frontend)
	if err := waitForRegion(ctx, url, o.Regions[0]); err != nil {
		return rep, fmt.Errorf("%w; haproxy said:\n%s", err, haproxyLogs.String())
	}
	fmt.Fprintf(out, "HAProxy on %s: %s is the primary, then %v as backups; health checks on /health/ every 100 ms\n",
		url, o.Regions[0], o.Regions[1:])

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watched := make(chan probe.Result, 1)
	var windows []probe.Window
	var mu sync.Mutex
	go func() {
		res, _ := probe.Watch(watchCtx, probe.Options{URL: url, Concurrency: 4, Rate: o.Rate, Timeout: 5 * time.Second}, time.Second,
			func(w probe.Window) {
				mu.Lock()
				windows = append(windows, w)
				mu.Unlock()
				fmt.Fprintln(out, probe.FormatWindow(w))
			})
		watched <- res
	}()

	if err := sleep(ctx, o.Before); err != nil {
		return rep, err
	}
	primary := instances[0]
	fmt.Fprintf(out, ">>> SIGTERM to %s: for SHUTDOWN_DELAY=%s it answers /health/ with 503 and keeps serving\n", primary.region, o.ShutdownDelay)
	sent := time.Now()
	if err := primary.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return rep, err
	}
	select {
	case <-primary.exited:
		rep.PrimaryExit = primary.exitErr
	case <-time.After(o.ShutdownDelay + 15*time.Second):
		return rep, fmt.Errorf("%s did not exit after SIGTERM", primary.region)
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	status := "status 0"
	if rep.PrimaryExit != nil {
		status = rep.PrimaryExit.Error()
	}
	fmt.Fprintf(out, ">>> %s exited (%s) %s after SIGTERM\n", primary.region, status, time.Since(sent).Round(10*time.Millisecond))

	if err := sleep(ctx, o.After); err != nil {
		return rep, err
	}
	stopWatch()
	rep.Probe = <-watched
	mu.Lock()
	rep.Windows = windows
	mu.Unlock()
	return rep, nil
}

// haproxyConfig is a load balancer in front of instances: the first is the
// primary and the rest are backups, used one at a time in order (HAProxy uses the
// first backup that is up unless told otherwise), as a global load balancer sends
// a client to the nearest healthy region. A server is down after two failed
// checks 100 ms apart.
func haproxyConfig(frontend int, instances []*instance) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `global
    maxconn 2000

defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s

frontend hello
    bind 127.0.0.1:%d
    default_backend regions

backend regions
    option httpchk
    http-check send meth GET uri /health/
    http-check expect status 200
    default-server inter 100ms fastinter 100ms downinter 100ms fall 2 rise 2
`, frontend)
	for i, in := range instances {
		backup := ""
		if i > 0 {
			backup = " backup"
		}
		fmt.Fprintf(&b, "    server %s 127.0.0.1:%d check%s\n", in.region, in.port, backup)
	}
	return b.Bytes()
}

// instance is one running hello server.
type instance struct {
	region  string
	port    int
	cmd     *exec.Cmd
	logs    *lockedWriter
	exited  chan struct{}
	exitErr error
}

// startInstance starts binary for region on a free loopback port and waits until
// it is healthy.
func startInstance(binary, region string, shutdownDelay time.Duration) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	in := &instance{region: region, port: port, logs: &lockedWriter{w: new(bytes.Buffer)}, exited: make(chan struct{})}
	in.cmd = exec.Command(binary)
	in.cmd.Env = []string{
		"PORT=" + strconv.Itoa(port),
		"REGION=" + region,
		"SHUTDOWN_DELAY=" + shutdownDelay.String(),
		"SHUTDOWN_TIMEOUT=5s",
	}
	in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	if err := in.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	go func() {
		in.exitErr = in.cmd.Wait()
		close(in.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health/", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in, nil
			}
		}
		select {
		case <-in.exited:
			return nil, fmt.Errorf("%s exited at start: %v\n%s", region, in.exitErr, in.logs)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			in.stop()
			return nil, fmt.Errorf("%s did not become healthy in 10s:\n%s", region, in.logs)
		}
	}
}

// stop ends the instance if it still runs.
func (in *instance) stop() {
	select {
	case <-in.exited:
		return
	default:
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.exited:
	case <-time.After(10 * time.Second):
		in.cmd.Process.Kill()
		<-in.exited
	}
}

// waitForRegion waits until url answers from region.
func waitForRegion(ctx context.Context, url, region string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := probe.Run(ctx, probe.Options{URL: url, Requests: 1, Concurrency: 1, Timeout: time.Second}, time.Second, nil)
		if err == nil && res.Count(region) == 1 {
			return nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("the load balancer at %s did not answer from %s within 10s", url, region)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// lockedWriter serialises writes from several goroutines: the probe's lines
// and the demo's events, or a process's output while the demo reads it.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// String returns what was written, when w is a *bytes.Buffer.
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.w.(*bytes.Buffer); ok {
		return b.String()
	}
	return ""
}
