package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the real one: with HELLO_RUN_MAIN=1
// it runs main itself, so that tests can send it real signals and read its exit code.
func TestMain(m *testing.M) {
	if os.Getenv("HELLO_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapEnv(nil))
	if err != nil {
		t.Fatalf("loadConfig with no environment: %v", err)
	}
	if cfg.port != 8080 || cfg.region != "" || cfg.httpsRedirect || cfg.shutdownTimeout != 8*time.Second ||
		cfg.shutdownDelay != 0 || cfg.logLevel != slog.LevelInfo || !slices.Equal(cfg.corsOrigins, []string{"*"}) {
		t.Errorf("defaults = %+v, want port 8080, no redirect, timeout 8s, delay 0, info, CORS *", cfg)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		check func(config) bool
		want  string
	}{
		{"PORT", map[string]string{"PORT": "9090"}, func(c config) bool { return c.port == 9090 }, "port 9090"},
		{"PORT 0 picks a free port", map[string]string{"PORT": "0"}, func(c config) bool { return c.port == 0 }, "port 0"},
		{"redirect on with K_SERVICE", map[string]string{"K_SERVICE": "hello"}, func(c config) bool { return c.httpsRedirect }, "redirect on"},
		{"HTTPS_REDIRECT=false wins over K_SERVICE", map[string]string{"K_SERVICE": "hello", "HTTPS_REDIRECT": "false"}, func(c config) bool { return !c.httpsRedirect }, "redirect off"},
		{"HTTPS_REDIRECT=true without K_SERVICE", map[string]string{"HTTPS_REDIRECT": "1"}, func(c config) bool { return c.httpsRedirect }, "redirect on"},
		{"durations", map[string]string{"SHUTDOWN_TIMEOUT": "500ms", "SHUTDOWN_DELAY": "2s"}, func(c config) bool {
			return c.shutdownTimeout == 500*time.Millisecond && c.shutdownDelay == 2*time.Second
		}, "timeout 500ms, delay 2s"},
		{"LOG_LEVEL in capitals", map[string]string{"LOG_LEVEL": "DEBUG"}, func(c config) bool { return c.logLevel == slog.LevelDebug }, "debug"},
		{"LOG_LEVEL warning", map[string]string{"LOG_LEVEL": "warning"}, func(c config) bool { return c.logLevel == slog.LevelWarn }, "warn"},
		{"CORS_ORIGINS list with spaces", map[string]string{"CORS_ORIGINS": " https://a.example ,http://localhost:3000"}, func(c config) bool {
			return slices.Equal(c.corsOrigins, []string{"https://a.example", "http://localhost:3000"})
		}, "two origins"},
		{"REGION", map[string]string{"REGION": "europe-west1"}, func(c config) bool { return c.region == "europe-west1" }, "europe-west1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(mapEnv(tt.env))
			if err != nil {
				t.Fatalf("loadConfig(%v): %v", tt.env, err)
			}
			if !tt.check(cfg) {
				t.Errorf("loadConfig(%v) = %+v, want %s", tt.env, cfg, tt.want)
			}
		})
	}
}

func TestBadConfigIsAnErrorNamingTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"PORT not a number", map[string]string{"PORT": "abc"}, []string{`PORT="abc"`}},
		{"PORT too large", map[string]string{"PORT": "70000"}, []string{`PORT="70000"`}},
		{"PORT negative", map[string]string{"PORT": "-1"}, []string{`PORT="-1"`}},
		{"SHUTDOWN_TIMEOUT not a duration", map[string]string{"SHUTDOWN_TIMEOUT": "banana"}, []string{`SHUTDOWN_TIMEOUT="banana"`}},
		{"SHUTDOWN_TIMEOUT without a unit", map[string]string{"SHUTDOWN_TIMEOUT": "8"}, []string{`SHUTDOWN_TIMEOUT="8"`}},
		{"SHUTDOWN_TIMEOUT zero", map[string]string{"SHUTDOWN_TIMEOUT": "0s"}, []string{`SHUTDOWN_TIMEOUT="0s"`}},
		{"SHUTDOWN_DELAY negative", map[string]string{"SHUTDOWN_DELAY": "-1s"}, []string{`SHUTDOWN_DELAY="-1s"`}},
		{"HTTPS_REDIRECT", map[string]string{"HTTPS_REDIRECT": "yes please"}, []string{`HTTPS_REDIRECT="yes please"`}},
		{"LOG_LEVEL", map[string]string{"LOG_LEVEL": "verbose"}, []string{`LOG_LEVEL="verbose"`}},
		{"REGION with a space", map[string]string{"REGION": "europe west1"}, []string{`REGION="europe west1"`}},
		{"CORS_ORIGINS without scheme", map[string]string{"CORS_ORIGINS": "example.com"}, []string{`CORS_ORIGINS="example.com"`}},
		{"CORS_ORIGINS with a path", map[string]string{"CORS_ORIGINS": "https://example.com/app"}, []string{`CORS_ORIGINS="https://example.com/app"`}},
		{"CORS_ORIGINS empty entry", map[string]string{"CORS_ORIGINS": "https://a.example,,"}, []string{`CORS_ORIGINS="https://a.example,,"`}},
		{"every bad variable at once", map[string]string{"PORT": "abc", "SHUTDOWN_TIMEOUT": "banana", "LOG_LEVEL": "loud"},
			[]string{`PORT="abc"`, `SHUTDOWN_TIMEOUT="banana"`, `LOG_LEVEL="loud"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// With its context already cancelled, a run that wrongly accepted the
			// configuration would start, stop at once and return nil.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			env := map[string]string{"PORT": "0"}
			for k, v := range tt.env {
				env[k] = v
			}
			stdout := new(syncBuffer)
			err := run(ctx, []string{"hello"}, mapEnv(env), stdout, io.Discard)
			if err == nil {
				t.Fatalf("run(%v) = nil, want a configuration error", tt.env)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("run(%v) = %q, want it to name %s", tt.env, err, want)
				}
			}
			if !strings.HasPrefix(err.Error(), "bad configuration") {
				t.Errorf("run(%v) = %q, want a bad configuration error", tt.env, err)
			}
			if stdout.Len() != 0 {
				t.Errorf("run(%v) logged %q before failing, want nothing", tt.env, stdout)
			}
		})
	}
}

func TestRunRejectsArguments(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"hello", "serve"}, mapEnv(nil), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unexpected argument "serve"`) {
		t.Errorf("run(hello serve) = %v, want an unexpected argument error", err)
	}
	stdout := new(syncBuffer)
	if err := run(t.Context(), []string{"hello", "-version"}, mapEnv(nil), stdout, io.Discard); err != nil || stdout.Len() == 0 {
		t.Errorf("run(hello -version) = %v with output %q, want a version and nil", err, stdout)
	}
	stderr := new(syncBuffer)
	if err := run(t.Context(), []string{"hello", "-h"}, mapEnv(nil), io.Discard, stderr); err != nil || !strings.Contains(stderr.String(), "SHUTDOWN_DELAY") {
		t.Errorf("run(hello -h) = %v with help %q, want nil and the configuration list", err, stderr)
	}
}

// server is run, started by a test on a free port.
type server struct {
	t      *testing.T
	url    string
	port   int
	logs   *syncBuffer
	cancel context.CancelFunc // stands in for SIGTERM
	done   chan error
}

// startRun starts run with env (PORT defaults to 0) and waits until it listens.
func startRun(t *testing.T, env map[string]string) *server {
	t.Helper()
	full := map[string]string{"PORT": "0"}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{t: t, logs: new(syncBuffer), cancel: cancel, done: make(chan error, 1)}
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

// waitLog waits for a log line whose message starts with prefix and returns it.
func (s *server) waitLog(prefix string) map[string]any {
	s.t.Helper()
	return waitForLog(s.t, s.logs, prefix, s.done)
}

// waitForLog waits until logs hold a JSON line whose message starts with prefix,
// and returns it. It gives up when done yields (the server ended) or after 10 s.
func waitForLog(t *testing.T, logs *syncBuffer, prefix string, done chan error) map[string]any {
	t.Helper()
	find := func() map[string]any {
		for _, line := range strings.Split(logs.String(), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) != nil {
				continue
			}
			if msg, _ := entry["message"].(string); strings.HasPrefix(msg, prefix) {
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
			t.Fatalf("the server ended (%v) without logging %q; logs:\n%s", err, prefix, logs)
		case <-deadline:
			t.Fatalf("no log line %q within 10s; logs:\n%s", prefix, logs)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// dial opens a raw TCP connection to the server, closed when the test ends.
func (s *server) dial() net.Conn {
	s.t.Helper()
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close() })
	return conn
}

// stop cancels run's context, as SIGTERM would, and returns what run returned.
func (s *server) stop() error {
	s.t.Helper()
	s.cancel()
	return s.wait()
}

// wait returns what run returned.
func (s *server) wait() error {
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
func (s *server) get(path string, header map[string]string) (*http.Response, string) {
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

func TestRunServesAndStopsCleanly(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"REGION": "asia-northeast1"})

	if resp, body := s.get("/", nil); resp.StatusCode != 200 || body != `{"message":"Hello world!","region":"asia-northeast1"}`+"\n" {
		t.Errorf("GET / = %d %q, want 200 with region asia-northeast1", resp.StatusCode, body)
	}
	if resp, body := s.get("/health/", nil); resp.StatusCode != 200 || body != `{"status":"ok"}`+"\n" {
		t.Errorf("GET /health/ = %d %q, want 200 ok", resp.StatusCode, body)
	}
	// Headers past MaxHeaderBytes are refused with 431 before any handler runs.
	// The server closes while the client may still be writing, so only the
	// status is read.
	big, _ := http.NewRequest("GET", s.url+"/", nil)
	big.Header.Set("X-Big", strings.Repeat("a", maxHeaderBytes+8192))
	if resp, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(big); err != nil {
		t.Errorf("GET / with %d bytes of headers: %v", maxHeaderBytes+8192, err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET / with %d bytes of headers status = %d, want 431", maxHeaderBytes+8192, resp.StatusCode)
	}

	start := s.waitLog("listening")
	for _, key := range []string{"time", "severity", "port", "region", "version"} {
		if _, ok := start[key]; !ok {
			t.Errorf("start-up line %v has no %q", start, key)
		}
	}
	if start["region"] != "asia-northeast1" {
		t.Errorf("start-up line region = %v, want asia-northeast1", start["region"])
	}

	if err := s.stop(); err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
	s.waitLog("stopped")
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second); err == nil {
		t.Errorf("port %d still accepts connections after run returned", s.port)
	}
}

func TestRunOnCloudRunFindsRegionAndTiesLogsToTraces(t *testing.T) {
	t.Parallel()
	f := newFakeMetadata(t, map[string]string{
		"instance/region":    "projects/42/regions/us-west1",
		"project/project-id": "proj-7",
	}, false)
	s := startRun(t, map[string]string{
		"K_SERVICE":         "hello",
		"K_REVISION":        "hello-00002-xyz",
		"GCE_METADATA_HOST": f.host(),
		"LOG_LEVEL":         "debug",
	})

	resp, body := s.get("/", map[string]string{
		"X-Forwarded-Proto": "https",
		"Traceparent":       "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	})
	if want := `{"message":"Hello world!","region":"us-west1","service":"hello","revision":"hello-00002-xyz"}` + "\n"; resp.StatusCode != 200 || body != want {
		t.Errorf("GET / = %d %q, want 200 %q", resp.StatusCode, body, want)
	}
	// On Cloud Run the redirect is on by default.
	if resp, _ := s.get("/?a=b", map[string]string{"X-Forwarded-Proto": "http"}); resp.StatusCode != 301 || resp.Header.Get("Location") != "https://"+resp.Request.Host+"/?a=b" {
		t.Errorf("GET / over http = %d to %q, want 301 to https", resp.StatusCode, resp.Header.Get("Location"))
	}

	line := s.waitLog("GET /")
	if got, want := line[traceKey], "projects/proj-7/traces/0af7651916cd43dd8448eb211c80319c"; got != want {
		t.Errorf("access log %s = %v, want %q", traceKey, got, want)
	}
}

// rawRequest is a request written by hand, so that a test can stop half-way
// through its headers.
const rawRequest = "GET / HTTP/1.1\r\nHost: hello.test\r\nUser-Agent: slow\r\n\r\n"

func TestShutdownFinishesHalfSentRequest(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"REGION": "europe-west1"})
	conn := s.dial()
	half := len(rawRequest) / 2
	if _, err := io.WriteString(conn, rawRequest[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the client is slow: the server has read the first half

	s.cancel() // SIGTERM
	drainLine := s.waitLog("stopped accepting")
	if drainLine["open_connections"] != 1.0 {
		t.Errorf("open connections when accepting stopped = %v, want 1", drainLine["open_connections"])
	}
	// New connections are refused from now on...
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second); err == nil {
		c.Close()
		t.Errorf("a new connection was accepted after shutdown stopped accepting")
	}
	// ...but the request that had begun is still answered in full.
	time.Sleep(300 * time.Millisecond)
	if _, err := io.WriteString(conn, rawRequest[half:]); err != nil {
		t.Fatalf("finishing the request after SIGTERM: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response to the half-sent request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != `{"message":"Hello world!","region":"europe-west1"}`+"\n" {
		t.Errorf("half-sent request = %d %q, want the full 200 answer", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Errorf("response during shutdown does not close the connection, want Connection: close")
	}
	if err := s.wait(); err != nil {
		t.Errorf("run = %v, want nil after every request finished", err)
	}
}

func TestShutdownFinishesHalfSentSecondRequestOnKeepAlive(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"REGION": "europe-west1"})
	conn := s.dial()
	r := bufio.NewReader(conn)
	io.WriteString(conn, rawRequest)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("first request: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.Close {
		t.Fatalf("first response closes the connection; want keep-alive before shutdown")
	}

	// The connection is idle; the second request starts, then SIGTERM arrives.
	half := len(rawRequest) / 2
	io.WriteString(conn, rawRequest[:half])
	time.Sleep(100 * time.Millisecond)
	s.cancel()
	s.waitLog("stopped accepting")
	time.Sleep(300 * time.Millisecond)
	if _, err := io.WriteString(conn, rawRequest[half:]); err != nil {
		t.Fatalf("finishing the second request: %v", err)
	}
	resp, err = http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading the second response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("second request status = %d, want 200", resp.StatusCode)
	}
	if err := s.wait(); err != nil {
		t.Errorf("run = %v, want nil", err)
	}
}

func TestShutdownClosesSilentConnections(t *testing.T) {
	t.Parallel()
	// A connection that never sends a byte must not hold shutdown until
	// ReadHeaderTimeout: with a timeout shorter than that, waiting for it would fail.
	s := startRun(t, map[string]string{"SHUTDOWN_TIMEOUT": "2s"})
	if readHeaderTimeout <= 2*time.Second {
		t.Fatalf("readHeaderTimeout = %v; this test needs it longer than SHUTDOWN_TIMEOUT", readHeaderTimeout)
	}
	conn := s.dial()
	time.Sleep(50 * time.Millisecond)
	if err := s.stop(); err != nil {
		t.Errorf("run = %v, want nil: a silent connection is closed, not waited for", err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("silent connection read = %d, %v; want EOF (closed by the server)", n, err)
	}
}

func TestShutdownDelayReportsDraining(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"SHUTDOWN_DELAY": "2s", "REGION": "us-east1"})
	if resp, _ := s.get("/health/", nil); resp.StatusCode != 200 {
		t.Fatalf("GET /health/ before shutdown status = %d, want 200", resp.StatusCode)
	}
	s.cancel()
	s.waitLog("draining")

	resp, body := s.get("/health/", nil)
	if resp.StatusCode != 503 || body != `{"status":"draining"}`+"\n" {
		t.Errorf("GET /health/ during the delay = %d %q, want 503 draining", resp.StatusCode, body)
	}
	resp, body = s.get("/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"region":"us-east1"`) {
		t.Errorf("GET / during the delay = %d %q, want 200: the service keeps serving", resp.StatusCode, body)
	}
	if err := s.wait(); err != nil {
		t.Errorf("run = %v, want nil", err)
	}
}

func TestShutdownTimeoutClosesWhatIsLeft(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"SHUTDOWN_TIMEOUT": "300ms"})
	conn := s.dial()
	io.WriteString(conn, rawRequest[:10]) // and never the rest
	time.Sleep(100 * time.Millisecond)

	err := s.stop()
	if err == nil || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT=300ms") {
		t.Errorf("run = %v, want an error naming SHUTDOWN_TIMEOUT=300ms", err)
	}
	if line := s.waitLog("shutdown timed out"); line["severity"] != "ERROR" || line["closed_connections"] != 1.0 {
		t.Errorf("timeout log line = %v, want ERROR with closed_connections 1", line)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Errorf("the unfinished connection is still open after run returned")
	}
}

func TestRunPortTakenIsAnError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	err = run(t.Context(), []string{"hello"}, mapEnv(map[string]string{"PORT": strconv.Itoa(port)}), io.Discard, io.Discard)
	if err == nil {
		t.Fatalf("run on a taken port = nil, want an error")
	}
	if want := fmt.Sprintf("listen on port %d", port); !strings.Contains(err.Error(), want) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("run on a taken port = %q, want %q and EADDRINUSE", err, want)
	}
}

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

func TestMainExitsZeroOnSIGTERM(t *testing.T) {
	t.Parallel()
	cmd, stdout, _, done := startMain(t, "PORT=0", "REGION=europe-west4")
	line := waitForLog(t, stdout, "listening", done)
	port, _ := line["port"].(float64)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", int(port)))
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"region":"europe-west4"`) {
		t.Errorf("GET / = %q, want region europe-west4", body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(t, done); err != nil {
		t.Errorf("after SIGTERM the command ended with %v, want exit status 0; output:\n%s", err, stdout)
	}
	waitForLog(t, stdout, "stopped", done)
}

func TestMainExitsNonZeroOnBadConfig(t *testing.T) {
	t.Parallel()
	_, stdout, stderr, done := startMain(t, "PORT=abc")
	err := waitExit(t, done)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("with PORT=abc the command ended with %v, want exit status 1", err)
	}
	if !strings.Contains(stderr.String(), `PORT="abc"`) {
		t.Errorf("stderr = %q, want it to name PORT", stderr)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing before the configuration error", stdout)
	}
}

func TestSlowClientsAreCutOffWhileOthersAreServed(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"REGION": "europe-west1"})
	const slow = 50
	closed := make(chan time.Duration, slow)
	opened := time.Now()
	for range slow {
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go func() {
			go func() {
				for i := 0; ; i++ { // a header byte every 300ms, never the end
					if _, err := conn.Write([]byte{"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[i%50]}); err != nil {
						return
					}
					time.Sleep(300 * time.Millisecond)
				}
			}()
			conn.Read(make([]byte, 512)) // returns once the server closes the connection
			closed <- time.Since(opened)
		}()
	}
	// Normal requests are served all the while.
	for i := range 50 {
		if resp, _ := s.get("/", nil); resp.StatusCode != 200 {
			t.Fatalf("request %d with %d slow clients open: status %d", i, slow, resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range slow {
		select {
		case d := <-closed:
			if d < readHeaderTimeout-time.Second {
				t.Errorf("a slow connection was closed after %s, before ReadHeaderTimeout (%s)", d, readHeaderTimeout)
			}
		case <-time.After(readHeaderTimeout + 10*time.Second):
			t.Fatalf("slow connections still open %s after ReadHeaderTimeout", 10*time.Second)
		}
	}
}

func TestShutdownUnderLoadAnswersEveryAcceptedRequest(t *testing.T) {
	t.Parallel()
	cmd, stdout, _, done := startMain(t, "PORT=0", "REGION=europe-west1", "SHUTDOWN_TIMEOUT=5s")
	line := waitForLog(t, stdout, "listening", done)
	addr := fmt.Sprintf("127.0.0.1:%d", int(line["port"].(float64)))

	// A fixed rate of 400 requests a second, each on its own connection, until
	// the process has exited.
	type outcome struct {
		ok, refused int
		failed      []string
	}
	results := make(chan outcome, 1)
	stop := make(chan struct{})
	go func() {
		var o outcome
		var mu sync.Mutex
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / 400)
		defer tick.Stop()
	send:
		for {
			select {
			case <-stop:
				break send
			case <-tick.C:
			}
			wg.Go(func() {
				status, connected, err := rawGet(addr)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && status == 200:
					o.ok++
				case !connected:
					// Not accepted: refused once the listener was closed, or reset
					// while the handshake was still under way when it closed.
					o.refused++
				case err != nil:
					o.failed = append(o.failed, err.Error())
				default:
					o.failed = append(o.failed, fmt.Sprintf("status %d", status))
				}
			})
		}
		wg.Wait()
		results <- o
	}()

	time.Sleep(time.Second)
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := waitExit(t, done)
	exitAfter := time.Since(sent)
	time.Sleep(300 * time.Millisecond) // some requests after the exit, to be refused
	close(stop)
	o := <-results

	t.Logf("%d answered 200, %d refused after the listener closed, %d failed; exit %v after %s", o.ok, o.refused, len(o.failed), err, exitAfter.Round(time.Millisecond))
	if err != nil {
		t.Errorf("the command ended with %v after SIGTERM under load, want exit status 0", err)
	}
	if exitAfter > 5*time.Second {
		t.Errorf("exit %s after SIGTERM, want within SHUTDOWN_TIMEOUT=5s", exitAfter)
	}
	if len(o.failed) > 0 {
		t.Errorf("%d accepted requests were not answered 200: %v", len(o.failed), o.failed[:min(len(o.failed), 5)])
	}
	if o.ok < 200 || o.refused == 0 {
		t.Errorf("the load did not span the shutdown (%d ok, %d refused)", o.ok, o.refused)
	}
}

// rawGet makes one GET / on a new connection and returns the status, and
// whether the connection was established at all.
func rawGet(addr string) (status int, connected bool, err error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, true, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, true, err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, true, nil
}
