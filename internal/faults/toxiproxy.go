package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// toxiproxy is Shopify's fault-injecting TCP proxy, driven over its HTTP API.
// The kernel here has no netem, so latency comes from it.
type toxiproxy struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	api  string
}

// startToxiproxy runs the toxiproxy server binary with its API on loopback.
func startToxiproxy(ctx context.Context, binary string) (*toxiproxy, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &toxiproxy{api: "http://127.0.0.1:" + strconv.Itoa(port)}
	t.cmd = exec.Command(binary, "-host", "127.0.0.1", "-port", strconv.Itoa(port))
	t.cmd.Stdout = &lockedBuffer{mu: &t.mu, b: &t.logs}
	t.cmd.Stderr = t.cmd.Stdout
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting toxiproxy (%s): %w", binary, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := t.call("GET", "/version", nil); err == nil {
			return t, nil
		}
		if ctx.Err() != nil {
			t.stop()
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			t.stop()
			t.mu.Lock()
			defer t.mu.Unlock()
			return nil, fmt.Errorf("toxiproxy did not start: %s", t.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call sends one API request with body encoded as JSON.
func (t *toxiproxy) call(method, path string, body any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, t.api+path, r)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("toxiproxy %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// proxy creates a proxy named name from a free loopback port to upstream and
// returns the port.
func (t *toxiproxy) proxy(name, upstream string) (int, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	return port, t.call("POST", "/proxies", map[string]any{
		"name": name, "listen": "127.0.0.1:" + strconv.Itoa(port), "upstream": upstream, "enabled": true,
	})
}

// addLatency delays everything the proxy named name sends upstream by d.
func (t *toxiproxy) addLatency(name string, d time.Duration) error {
	return t.call("POST", "/proxies/"+name+"/toxics", map[string]any{
		"name": "slow", "type": "latency", "stream": "upstream",
		"attributes": map[string]any{"latency": d.Milliseconds()},
	})
}

// removeLatency undoes addLatency.
func (t *toxiproxy) removeLatency(name string) error {
	return t.call("DELETE", "/proxies/"+name+"/toxics/slow", nil)
}

// stop ends toxiproxy.
func (t *toxiproxy) stop() { stopProcess(t.cmd) }
