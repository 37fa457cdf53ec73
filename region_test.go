package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
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
			got := lookupLocation(context.Background(), newLogger(logs, slog.LevelInfo), cfg)
			if got.region != tt.wantRegion || got.projectID != tt.wantProject {
				t.Errorf("lookupLocation = {region %q, project %q}, want {%q, %q}", got.region, got.projectID, tt.wantRegion, tt.wantProject)
			}
			if n := f.requests.Load(); tt.wantRequests >= 0 && n != tt.wantRequests {
				t.Errorf("metadata server got %d requests, want %d", n, tt.wantRequests)
			}
			if tt.wantWarning != "" && !strings.Contains(logs.String(), tt.wantWarning) {
				t.Errorf("logs = %q, want a warning containing %q", logs, tt.wantWarning)
			}
			if tt.wantNoWarning && logs.Len() != 0 {
				t.Errorf("logs = %q, want none", logs)
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
