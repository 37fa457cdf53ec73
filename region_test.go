package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeMetadata is a stand-in for the metadata server. Like the real one it answers
// 403 to a request without Metadata-Flavor: Google.
type fakeMetadata struct {
	*httptest.Server
	requests atomic.Int32
}

// newFakeMetadata serves answers, keyed by path under /computeMetadata/v1/; a path
// it does not know gets 404, as on the real server. hang makes it never answer.
func newFakeMetadata(t *testing.T, answers map[string]string, hang bool) *fakeMetadata {
	t.Helper()
	f := &fakeMetadata{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "Missing Metadata-Flavor:Google header.", http.StatusForbidden)
			return
		}
		if hang {
			<-r.Context().Done()
			return
		}
		v, ok := answers[strings.TrimPrefix(r.URL.Path, "/computeMetadata/v1/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Metadata-Flavor", "Google")
		io.WriteString(w, v)
	}))
	t.Cleanup(f.Close)
	return f
}

// host is the fake's address as GCE_METADATA_HOST takes it.
func (f *fakeMetadata) host() string { return strings.TrimPrefix(f.URL, "http://") }

func TestFakeMetadataRejectsRequestsWithoutTheHeader(t *testing.T) {
	t.Parallel()
	f := newFakeMetadata(t, map[string]string{"instance/region": "projects/1/regions/r"}, false)
	resp, err := http.Get(f.URL + "/computeMetadata/v1/instance/region")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET without Metadata-Flavor status = %d, want 403", resp.StatusCode)
	}
}

func TestLookupLocation(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"instance/region":    "projects/123456789/regions/europe-west1",
		"project/project-id": "my-project\n",
	}
	tests := []struct {
		name          string
		env           map[string]string // GCE_METADATA_HOST is added when the fake is used
		answers       map[string]string
		hang          bool
		noServer      bool // GCE_METADATA_HOST points at a closed port
		wantRegion    string
		wantProject   string
		wantRequests  int32 // -1: any number
		wantWarning   string
		wantNoWarning bool
	}{
		{
			name: "off Cloud Run: local, and the network is not asked",
			env:  map[string]string{}, answers: good,
			wantRegion: "local", wantRequests: 0, wantNoWarning: true,
		},
		{
			name: "off Cloud Run: REGION",
			env:  map[string]string{"REGION": "my-laptop"}, answers: good,
			wantRegion: "my-laptop", wantRequests: 0, wantNoWarning: true,
		},
		{
			name: "on Cloud Run: region from the metadata server",
			env:  map[string]string{"K_SERVICE": "hello"}, answers: good,
			wantRegion: "europe-west1", wantProject: "my-project", wantRequests: 2, wantNoWarning: true,
		},
		{
			name: "on Cloud Run: REGION wins, the project is still asked for traces",
			env:  map[string]string{"K_SERVICE": "hello", "REGION": "us-east1"}, answers: good,
			wantRegion: "us-east1", wantProject: "my-project", wantRequests: 1, wantNoWarning: true,
		},
		{
			name: "on Cloud Run: REGION and GOOGLE_CLOUD_PROJECT, nothing is asked",
			env:  map[string]string{"K_SERVICE": "hello", "REGION": "us-east1", "GOOGLE_CLOUD_PROJECT": "given-project"}, answers: good,
			wantRegion: "us-east1", wantProject: "given-project", wantRequests: 0, wantNoWarning: true,
		},
		{
			name: "off Cloud Run: GOOGLE_CLOUD_PROJECT ties logs to traces",
			env:  map[string]string{"GOOGLE_CLOUD_PROJECT": "given-project"}, answers: good,
			wantRegion: "local", wantProject: "given-project", wantRequests: 0, wantNoWarning: true,
		},
		{
			name: "on Cloud Run: region not defined",
			env:  map[string]string{"K_SERVICE": "hello"}, answers: map[string]string{"project/project-id": "p"},
			wantRegion: "unknown", wantProject: "p", wantRequests: -1, wantWarning: "cannot find the region",
		},
		{
			name:       "on Cloud Run: region answer malformed",
			env:        map[string]string{"K_SERVICE": "hello"},
			answers:    map[string]string{"instance/region": "europe-west1 (probably)", "project/project-id": "p"},
			wantRegion: "unknown", wantProject: "p", wantRequests: -1, wantWarning: "unexpected answer",
		},
		{
			name: "on Cloud Run: metadata server hangs",
			env:  map[string]string{"K_SERVICE": "hello"}, hang: true,
			wantRegion: "unknown", wantRequests: -1, wantWarning: "cannot find the region",
		},
		{
			name: "on Cloud Run: metadata server unreachable",
			env:  map[string]string{"K_SERVICE": "hello"}, noServer: true,
			wantRegion: "unknown", wantRequests: -1, wantWarning: "cannot find the project id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeMetadata(t, tt.answers, tt.hang)
			env := map[string]string{"GCE_METADATA_HOST": f.host()}
			if tt.noServer {
				env["GCE_METADATA_HOST"] = closedPort(t)
			}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := loadConfig(mapEnv(env))
			if err != nil {
				t.Fatal(err)
			}
			logs := new(syncBuffer)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got, wait := lookupLocation(ctx, newLogger(logs, slog.LevelInfo), cfg)
			if tt.hang {
				cancel() // as shutdown would: the project question ends with it
			}
			if wait != nil {
				wait()
			}
			gotProject := ""
			if got.project != nil && got.project.id.Load() != nil {
				gotProject = *got.project.id.Load()
			}
			if got.region != tt.wantRegion || gotProject != tt.wantProject {
				t.Errorf("lookupLocation = {region %q, project %q}, want {%q, %q}", got.region, gotProject, tt.wantRegion, tt.wantProject)
			}
			if n := f.requests.Load(); tt.wantRequests >= 0 && n != tt.wantRequests {
				t.Errorf("metadata server got %d requests, want %d", n, tt.wantRequests)
			}
			if tt.wantWarning != "" && !strings.Contains(logs.String(), tt.wantWarning) {
				t.Errorf("logs = %q, want a warning containing %q", logs, tt.wantWarning)
			}
			if tt.wantNoWarning && strings.Contains(logs.String(), `"severity":"WARNING"`) {
				t.Errorf("logs = %q, want no warning", logs)
			}
		})
	}
}

// closedPort returns a loopback host:port that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// gatedMetadata is a metadata server that holds every request until release is
// closed (or the client gives up), counting the requests it holds.
type gatedMetadata struct {
	*fakeMetadata
	release chan struct{}
	held    atomic.Int32
}

func newGatedMetadata(t *testing.T, answers map[string]string) *gatedMetadata {
	t.Helper()
	g := &gatedMetadata{release: make(chan struct{})}
	inner := newFakeMetadata(t, answers, false)
	g.fakeMetadata = &fakeMetadata{Server: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.requests.Add(1)
		g.held.Add(1)
		defer g.held.Add(-1)
		select {
		case <-g.release:
			inner.Config.Handler.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))}
	t.Cleanup(g.Close)
	return g
}

// waitRequests waits until the server has received n requests.
func (g *gatedMetadata) waitRequests(t *testing.T, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.requests.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the metadata server got %d requests in 10s, want %d", g.requests.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// logLines returns the JSON log lines whose message is msg, in order.
func logLines(t *testing.T, logs *syncBuffer, msg string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry["message"] == msg {
			lines = append(lines, entry)
		}
	}
	return lines
}

// With REGION set, the first answers do not wait on the metadata server, however
// slow: the project id, asked beside them, only delays the trace links of log
// lines, and the first line without one says so.
func TestFirstAnswersDoNotWaitOnTheMetadataServer(t *testing.T) {
	t.Parallel()
	const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, answers := range []bool{true, false} {
		name := "metadata server answers late"
		if !answers {
			name = "metadata server never answers"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := newGatedMetadata(t, map[string]string{"project/project-id": "proj-late"})
			s := startRun(t, map[string]string{
				"K_SERVICE":         "hello",
				"REGION":            "asia-south2",
				"GCE_METADATA_HOST": g.host(),
				"LOG_LEVEL":         "debug",
			})
			g.waitRequests(t, 1)
			for range 2 {
				resp, body := s.get("/", map[string]string{"Traceparent": traceparent})
				if want := `{"message":"Hello world!","region":"asia-south2","service":"hello"}` + "\n"; resp.StatusCode != 200 || body != want {
					t.Errorf("GET / = %d %q, want 200 %q", resp.StatusCode, body, want)
				}
			}
			if n := g.held.Load(); n != 1 {
				t.Errorf("the metadata server holds %d requests after the first answers, want 1: the answers waited for it", n)
			}
			if n := g.requests.Load(); n != 1 {
				t.Errorf("the metadata server got %d requests, want 1 (the project id only)", n)
			}
			s.waitLog("GET /")
			if n := len(logLines(t, s.logs, msgProjectNotYet)); n != 1 {
				t.Errorf("%d lines say the project id is not known yet, want 1; logs:\n%s", n, s.logs)
			}
			for _, line := range logLines(t, s.logs, "GET /") {
				if _, ok := line[traceKey]; ok {
					t.Errorf("a log line written before the project id was known has a trace link: %v", line)
				}
			}
			if !answers {
				return
			}
			close(g.release)
			s.waitLog("found the project id; log lines are tied to traces from now on")
			s.get("/", map[string]string{"Traceparent": traceparent})
			lines := logLines(t, s.logs, "GET /")
			for deadline := time.Now().Add(10 * time.Second); len(lines) < 3 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
				lines = logLines(t, s.logs, "GET /")
			}
			want := "projects/proj-late/traces/0af7651916cd43dd8448eb211c80319c"
			if got := lines[len(lines)-1][traceKey]; len(lines) != 3 || got != want {
				t.Errorf("after the metadata server answered, %d request lines, the last with %s %v, want 3, the last with %q", len(lines), traceKey, got, want)
			}
		})
	}
}
