package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mapEnv returns a getenv that reads from m.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// serveHandler serves newHandler, configured from env, behind a real HTTP
// server.
func serveHandler(t *testing.T, env map[string]string, loc location, draining *atomic.Bool) *httptest.Server {
	t.Helper()
	cfg, err := loadConfig(mapEnv(env))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if draining == nil {
		draining = new(atomic.Bool)
	}
	srv := httptest.NewServer(newHandler(newLogger(io.Discard, slog.LevelInfo), cfg, loc, draining))
	t.Cleanup(srv.Close)
	return srv
}

// noRedirects is a client that returns redirects instead of following them.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// syncBuffer is a bytes.Buffer that a server's goroutines can write to while a
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *syncBuffer) String() string { return string(b.Bytes()) }

func (b *syncBuffer) Len() int { return len(b.Bytes()) }

// TestMain lets the test binary stand in for the real one: with HELLO_RUN_MAIN=1
// it runs main itself, so that tests can send it real signals and read its exit code.
func TestMain(m *testing.M) {
	if os.Getenv("HELLO_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runningService is run, started by a test on a free port.
type runningService struct {
	t      *testing.T
	url    string
	port   int
	logs   *syncBuffer
	cancel context.CancelFunc // stands in for SIGTERM
	done   chan error
}

// startRun starts run with env (PORT defaults to 0) and waits until it listens.
func startRun(t *testing.T, env map[string]string) *runningService {
	t.Helper()
	full := map[string]string{"PORT": "0"}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &runningService{t: t, logs: new(syncBuffer), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, []string{"hello"}, mapEnv(full), s.logs, s.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			t.Errorf("run did not return after its context was cancelled")
		}
	})
	line := s.waitLog("listening")
	port, ok := line["port"].(float64)
	if !ok {
		t.Fatalf("start-up line %v has no port", line)
	}
	s.port = int(port)
	s.url = "http://127.0.0.1:" + strconv.Itoa(s.port)
	return s
}

// waitLog waits for a log line whose message is msg and returns it.
func (s *runningService) waitLog(msg string) map[string]any {
	s.t.Helper()
	return waitForLog(s.t, s.logs, msg, s.done)
}

// waitForLog waits until logs hold a JSON line whose message is msg, and returns
// it. The whole message must match: "stopped" must not be found in "stopped
// accepting connections". It gives up when done yields (the server ended) or
// after 10 s.
func waitForLog(t *testing.T, logs *syncBuffer, msg string, done chan error) map[string]any {
	t.Helper()
	find := func() map[string]any {
		for _, line := range strings.Split(logs.String(), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) != nil {
				continue
			}
			if m, _ := entry["message"].(string); m == msg {
				return entry
			}
		}
		return nil
	}
	deadline := time.After(10 * time.Second)
	for {
		if entry := find(); entry != nil {
			return entry
		}
		select {
		case err := <-done:
			done <- err
			if entry := find(); entry != nil {
				return entry
			}
			t.Fatalf("the server ended (%v) without logging %q; logs:\n%s", err, msg, logs)
		case <-deadline:
			t.Fatalf("no log line %q within 10s; logs:\n%s", msg, logs)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// dial opens a raw TCP connection to the server, closed when the test ends.
func (s *runningService) dial() net.Conn {
	s.t.Helper()
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close() })
	return conn
}

// stop cancels run's context, as SIGTERM would, and returns what run returned.
func (s *runningService) stop() error {
	s.t.Helper()
	s.cancel()
	return s.wait()
}

// wait returns what run returned.
func (s *runningService) wait() error {
	s.t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(15 * time.Second):
		s.t.Fatalf("run did not return; logs:\n%s", s.logs)
		return nil
	}
}

// get makes a request on a fresh connection and returns the status and body.
func (s *runningService) get(path string, header map[string]string) (*http.Response, string) {
	s.t.Helper()
	req, err := http.NewRequest("GET", s.url+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp, string(body)
}

// rawRequest is a request written by hand, so that a test can stop half-way
// through its headers.
const rawRequest = "GET / HTTP/1.1\r\nHost: hello.test\r\nUser-Agent: slow\r\n\r\n"

// startMain runs the test binary as the real command, with env as its whole
// environment. done yields what Wait returned.
func startMain(t *testing.T, env ...string) (cmd *exec.Cmd, stdout, stderr *syncBuffer, done chan error) {
	t.Helper()
	cmd = exec.Command(os.Args[0])
	cmd.Env = append([]string{"HELLO_RUN_MAIN=1"}, env...)
	stdout, stderr = new(syncBuffer), new(syncBuffer)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd, stdout, stderr, done
}

// waitExit returns what the command's Wait returned.
func waitExit(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		done <- err
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("the command did not exit")
		return nil
	}
}

// The log messages tests wait for, whole.
const (
	msgStoppedAccepting = "stopped accepting connections; waiting for open requests"
	msgDraining         = "draining: /health/ answers 503 while still serving"
	msgShutdownTimedOut = "shutdown timed out; closed the remaining connections"
)
