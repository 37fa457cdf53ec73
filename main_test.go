package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

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
	if resp, _ := s.get("/?a=b", map[string]string{"X-Forwarded-Proto": "http"}); resp.StatusCode != 301 || resp.Header.Get("Location") != "https://"+resp.Request.URL.Hostname()+"/?a=b" {
		t.Errorf("GET / over http = %d to %q, want 301 to https", resp.StatusCode, resp.Header.Get("Location"))
	}

	line := s.waitLog("GET /")
	if got, want := line[traceKey], "projects/proj-7/traces/0af7651916cd43dd8448eb211c80319c"; got != want {
		t.Errorf("access log %s = %v, want %q", traceKey, got, want)
	}
}

func TestShutdownDelayReportsDraining(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"SHUTDOWN_DELAY": "2s", "REGION": "us-east1"})
	if resp, _ := s.get("/health/", nil); resp.StatusCode != 200 {
		t.Fatalf("GET /health/ before shutdown status = %d, want 200", resp.StatusCode)
	}
	s.cancel()
	s.waitLog(msgDraining)

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
	if line := s.waitLog(msgShutdownTimedOut); line["severity"] != "ERROR" || line["closed_connections"] != 1.0 {
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

func TestMainExitsZeroOnSIGTERM(t *testing.T) {
	t.Parallel()
	cmd, stdout, _, done := startMain(t, "PORT=0", "REGION=europe-west4", "GOMAXPROCS=3", "GOMEMLIMIT=100MiB")
	line := waitForLog(t, stdout, "listening", done)
	port, _ := line["port"].(float64)
	// What the runtime took from the environment (on Cloud Run, GOMAXPROCS from
	// the cgroup's CPU limit).
	if line["gomaxprocs"] != 3.0 || line["gomemlimit"] != float64(100<<20) {
		t.Errorf("start-up line gomaxprocs = %v, gomemlimit = %v, want 3 and %d", line["gomaxprocs"], line["gomemlimit"], 100<<20)
	}
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

// TestShutdownDelayOnCloudRunWarns: /health/ is the drain signal during
// SHUTDOWN_DELAY and, on Cloud Run, the readiness probe service health counts.
// The delay is for balancers that health-check; on Cloud Run it would only make
// stopping instances look unready, so the service says so at start-up, and stays
// quiet without it.
func TestShutdownDelayOnCloudRunWarns(t *testing.T) {
	t.Parallel()
	f := newFakeMetadata(t, map[string]string{"instance/region": "projects/1/regions/us-east1", "project/project-id": "p"}, false)
	for _, tt := range []struct {
		env  map[string]string
		warn bool
	}{
		{map[string]string{"K_SERVICE": "hello", "SHUTDOWN_DELAY": "2s", "GCE_METADATA_HOST": f.host()}, true},
		{map[string]string{"K_SERVICE": "hello", "GCE_METADATA_HOST": f.host()}, false},
		{map[string]string{"SHUTDOWN_DELAY": "2s"}, false},
	} {
		s := startRun(t, tt.env)
		warned := false
		for _, line := range strings.Split(s.logs.String(), "\n") {
			if strings.Contains(line, `"severity":"WARNING"`) && strings.Contains(line, msgDelayOnCloudRun) {
				warned = true
			}
		}
		if warned != tt.warn {
			t.Errorf("with %v the start-up warning about SHUTDOWN_DELAY on Cloud Run = %v, want %v; logs:\n%s", tt.env, warned, tt.warn, s.logs)
		}
	}
}
