package faults

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// haproxy is the load balancer in front of the regions, standing in for Google's
// global external Application Load Balancer. docs/failover.md maps each setting
// to the Google setting it stands in for.
type haproxy struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	logs   bytes.Buffer
	socket string // the runtime API, for set server addr
	url    string // the first frontend
	urls   []string
	canary string // the release configuration's canary route
}

// haproxyConfig returns the configuration for regions behind a frontend on
// 127.0.0.1:port. The first region is the nearest: "balance first" sends every
// request to the first server that is up and has room, as the global load
// balancer sends a client to the nearest healthy region. With retries, a request
// that failed to connect, got an empty response or no response within the
// server timeout is tried again, once, on another server.
func haproxyConfig(port int, socket string, regions []*region, retries bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 4000
    stats socket %s mode 600 level admin
`+haproxyDefaults+`
frontend hello
    bind 127.0.0.1:%d
    default_backend regions

backend regions
    balance first
    option http-server-close
    http-reuse never
    option httpchk
    http-check send meth GET uri /health/
    http-check expect status 200
    default-server inter 250ms fastinter 250ms downinter 250ms fall 2 rise 2 observe layer7 error-limit 3 on-error mark-down maxconn 1000
`, socket, port)
	if retries {
		b.WriteString(`    retries 1
    retry-on conn-failure empty-response response-timeout
    option redispatch 1
`)
	} else {
		b.WriteString("    retries 0\n")
	}
	for i, r := range regions {
		fmt.Fprintf(&b, "    server %s %s:%d id %d check\n", r.name, r.addr, regionPort, i+1)
	}
	return b.String()
}

// haproxyDefaults are the timeouts both configurations share: the load
// balancer's per-try timeout (server) and its health checks' (check).
const haproxyDefaults = `
defaults
    mode http
    timeout connect 500ms
    timeout client 30s
    timeout server 1s
    timeout check 1s
`

// ExampleConfig returns the configuration a run uses, with the default regions
// and the frontend on port 8000, for the report.
func ExampleConfig(retries bool) string {
	var regions []*region
	for i, name := range DefaultRegions() {
		regions = append(regions, &region{name: name, addr: fmt.Sprintf("%s.%d", subnet, 11+i)})
	}
	return haproxyConfig(8000, "/tmp/faults/haproxy.sock", regions, retries)
}

// startHAProxy writes the fault matrix's configuration into dir and starts
// HAProxy, then waits until its frontend accepts connections.
func startHAProxy(ctx context.Context, dir string, regions []*region, retries bool) (*haproxy, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	socket := filepath.Join(dir, "haproxy.sock")
	return launchHAProxy(ctx, dir, haproxyConfig(port, socket, regions, retries), socket, []int{port}, nil)
}

// launchHAProxy starts HAProxy with cfg, whose frontends listen on ports of
// 127.0.0.1, and waits until the first accepts connections. Lines HAProxy logs
// that begin with "RUN " go to requests, if it is not nil; the rest is kept.
func launchHAProxy(ctx context.Context, dir, cfg, socket string, ports []int, requests func(line string)) (*haproxy, error) {
	h := &haproxy{socket: socket}
	for _, p := range ports {
		h.urls = append(h.urls, fmt.Sprintf("http://127.0.0.1:%d/", p))
	}
	h.url = h.urls[0]
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	h.cmd = exec.Command("haproxy", "-db", "-f", file)
	kept := &lockedBuffer{mu: &h.mu, b: &h.logs}
	h.cmd.Stdout, h.cmd.Stderr = kept, kept
	if requests != nil {
		h.cmd.Stdout = &lineSplitter{prefix: "RUN ", matched: requests, rest: kept}
	}
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting haproxy: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0]), time.Second)
		if err == nil {
			c.Close()
			if _, err := os.Stat(h.socket); err == nil {
				return h, nil
			}
		}
		if ctx.Err() != nil {
			h.stop()
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("haproxy did not start within 10s: %s", h.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lineSplitter hands the whole lines written to it that begin with prefix to
// matched, and writes the others to rest. HAProxy writes each log line at once,
// so a line is never split between its own writes and another's.
type lineSplitter struct {
	prefix  string
	matched func(line string)
	rest    io.Writer
	partial []byte
}

func (l *lineSplitter) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if strings.HasPrefix(line, l.prefix) {
			l.matched(line)
		} else if _, err := io.WriteString(l.rest, line+"\n"); err != nil {
			return len(p), err
		}
	}
}

// output returns what HAProxy has printed.
func (h *haproxy) output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs.String()
}

// command sends one command to HAProxy's runtime API and returns its answer.
func (h *haproxy) command(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", h.socket, time.Second)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", cmd); err != nil {
		return "", err
	}
	var out bytes.Buffer
	_, err = out.ReadFrom(c)
	return strings.TrimSpace(out.String()), err
}

// setServerAddr points the server named region at host:port.
func (h *haproxy) setServerAddr(region, host string, port int) error {
	out, err := h.command(fmt.Sprintf("set server regions/%s addr %s port %d", region, host, port))
	if err != nil {
		return err
	}
	if !strings.Contains(out, "IP changed") && !strings.Contains(out, "no need to change") && !strings.Contains(out, "port changed") {
		return fmt.Errorf("haproxy: set server %s: %s", region, out)
	}
	return nil
}

// serverUp reports whether HAProxy counts the server named region as up (its
// health checks pass, or have not yet failed often enough to take it down).
func (h *haproxy) serverUp(region string) (bool, error) { return h.up("regions", region) }

// up reports whether HAProxy counts server of backend as up.
func (h *haproxy) up(backend, server string) (bool, error) {
	out, err := h.command("show stat")
	if err != nil {
		return false, err
	}
	// CSV: # pxname,svname,qcur,...; the status is the 18th field.
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, ",")
		if len(f) > 17 && f[0] == backend && f[1] == server {
			return strings.HasPrefix(f[17], "UP"), nil
		}
	}
	return false, fmt.Errorf("haproxy show stat has no server %s/%s:\n%s", backend, server, out)
}

// setWeight sets the weight of server in backend, which takes effect for the
// next request HAProxy balances.
func (h *haproxy) setWeight(backend, server string, weight int) error {
	out, err := h.command(fmt.Sprintf("set server %s/%s weight %d", backend, server, weight))
	if err != nil {
		return err
	}
	if out != "" {
		return fmt.Errorf("haproxy: set server %s/%s weight %d: %s", backend, server, weight, out)
	}
	return nil
}

// stop ends HAProxy.
func (h *haproxy) stop() { stopProcess(h.cmd) }

// stopProcess ends a process the harness started: SIGTERM, then SIGKILL after 5 s.
func stopProcess(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
