package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func regionServer(t *testing.T, region string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"message":"Hello world!","region":%q}`+"\n", region)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// routeServer stands in for the load balancer's canary routes: it answers as the
// region the request's X-Hello-Canary header names, as wrong's region instead
// for the regions in wrong, and 500 for a region in broken.
func routeServer(t *testing.T, wrong map[string]string, broken ...string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		region := r.Header.Get("X-Hello-Canary")
		for _, b := range broken {
			if b == region {
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintln(w, `{"message":"Hello world!","region":"`+region+`"}`)
				return
			}
		}
		if other, ok := wrong[region]; ok {
			region = other
		}
		fmt.Fprintf(w, `{"message":"Hello world!","region":%q}`+"\n", region)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func probeRun(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), append([]string{"probe"}, args...), &out, &errOut, false)
	return out.String(), errOut.String(), err
}

func TestProbeTable(t *testing.T) {
	t.Parallel()
	srv := regionServer(t, "europe-west1")
	out, _, err := probeRun(t, "-url", srv.URL, "-n", "30", "-c", "3")
	if err != nil {
		t.Fatalf("probe = %v, want nil", err)
	}
	for _, want := range []string{"30 requests to " + srv.URL, "europe-west1       30  100.0", "errors: 0 of 30 requests"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestProbeChecks(t *testing.T) {
	t.Parallel()
	srv := regionServer(t, "europe-west1")
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	// Every fourth request fails: 2 of 8, one at a time. One server a test: each
	// counts its own requests.
	flaky := func() string {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1)%4 == 0 {
				http.Error(w, "no", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, `{"message":"Hello world!","region":"europe-west1"}`)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		fmt.Fprintln(w, `{"message":"Hello world!","region":"europe-west1"}`)
	}))
	t.Cleanup(slow.Close)
	tests := []struct {
		name    string
		args    []string
		wantErr error
		wantMsg string
	}{
		{"expected region", []string{"-url", srv.URL, "-n", "5", "-expect-region", "europe-west1"}, nil, ""},
		{"one of the expected regions", []string{"-url", srv.URL, "-n", "5", "-expect-region", "us-east1, europe-west1"}, nil, ""},
		{"another region", []string{"-url", srv.URL, "-n", "5", "-expect-region", "us-east1"}, errFailed, "FAIL: 5 answers from europe-west1, want only us-east1"},
		{"errors over the limit", []string{"-url", down.URL, "-n", "4"}, errFailed, "FAIL: 4 requests failed, more than -max-errors=0"},
		{"errors within the limit", []string{"-url", down.URL, "-n", "4", "-max-errors", "4"}, nil, ""},
		{"error ratio over the limit", []string{"-url", down.URL, "-n", "4", "-max-error-ratio", "0.99"}, errFailed, "FAIL: 4 of 4 requests failed, more than -max-error-ratio=0.99"},
		{"error ratio within the limit", []string{"-url", flaky(), "-n", "8", "-c", "1", "-max-error-ratio", "0.25"}, nil, ""},
		{"error ratio just over the limit", []string{"-url", flaky(), "-n", "8", "-c", "1", "-max-error-ratio", "0.2"}, errFailed, "FAIL: 2 of 8 requests failed, more than -max-error-ratio=0.2"},
		{"both error limits", []string{"-url", srv.URL, "-max-errors", "3", "-max-error-ratio", "0.1"}, nil, "give one limit, not both"},
		{"p99 within the limit", []string{"-url", srv.URL, "-n", "5", "-max-p99", "10s"}, nil, ""},
		{"p99 over the limit", []string{"-url", slow.URL, "-n", "3", "-max-p99", "1ms"}, errFailed, "more than 1ms"},
		{"negative p99", []string{"-url", srv.URL, "-max-p99", "-1s"}, nil, "-max-p99 -1s: want 0 or more"},
		{"no URL", []string{"-n", "4"}, nil, "-url is required"},
		{"error ratio of 1", []string{"-url", srv.URL, "-max-error-ratio", "1"}, nil, "-max-error-ratio 1: want a share from 0 to below 1"},
		{"route header without regions", []string{"-url", srv.URL, "-route-header", "X-Hello-Canary"}, nil, "-route-header needs -expect-region"},
		{"bad URL", []string{"-url", "example.com"}, nil, "want an http:// or https:// URL"},
		{"duration without watch", []string{"-url", srv.URL, "-duration", "1s"}, nil, "-duration goes with -watch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, err := probeRun(t, tt.args...)
			switch {
			case tt.wantErr == nil && tt.wantMsg == "" && err != nil:
				t.Errorf("probe %v = %v (%s), want success", tt.args, err, stderr)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("probe %v = %v, want %v", tt.args, err, tt.wantErr)
			case tt.wantMsg != "" && !strings.Contains(stderr, tt.wantMsg) && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)):
				t.Errorf("probe %v: error %v, stderr %q; want %q", tt.args, err, stderr, tt.wantMsg)
			}
		})
	}
}

func TestProbeJSON(t *testing.T) {
	t.Parallel()
	srv := regionServer(t, "us-west1")
	out, _, err := probeRun(t, "-url", srv.URL, "-n", "12", "-json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		URL      string
		Requests int
		Errors   int
		Regions  []struct {
			Region string
			Count  int
			P50    float64 `json:"p50_ms"`
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("-json output is not JSON: %v\n%s", err, out)
	}
	if got.URL != srv.URL || got.Requests != 12 || got.Errors != 0 || len(got.Regions) != 1 ||
		got.Regions[0].Region != "us-west1" || got.Regions[0].Count != 12 || got.Regions[0].P50 <= 0 {
		t.Errorf("-json = %+v, want 12 answers from us-west1 with a p50", got)
	}
}

func TestProbeWatchJSONLines(t *testing.T) {
	t.Parallel()
	srv := regionServer(t, "us-west1")
	out, _, err := probeRun(t, "-url", srv.URL, "-watch", "-duration", "1500ms", "-rate", "50", "-c", "2", "-json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Fatalf("-watch -json printed %d lines in 1.5s, want one a second and a last one:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var w struct{ Time string }
		if err := json.Unmarshal([]byte(l), &w); err != nil || w.Time == "" {
			t.Errorf("watch line %q is not JSON with a time", l)
		}
	}
}

// TestProbeAsksEachRegionByItsRoute is the release pipeline's synthetic traffic:
// each request names one region in -route-header, and the probe fails unless
// every region answered, each only its own requests, within the error ratio.
func TestProbeAsksEachRegionByItsRoute(t *testing.T) {
	t.Parallel()
	base := []string{"-route-header", "X-Hello-Canary", "-expect-region", "us-east1,us-west1,asia-northeast1", "-n", "30", "-c", "3", "-max-error-ratio", "0.05"}
	tests := []struct {
		name        string
		srv         *httptest.Server
		wantMsg     string // empty: the probe passes
		wantErrLine string // a line of the table's errors
	}{
		{"every region answers its own requests", routeServer(t, nil), "", ""},
		{"one region answers 500", routeServer(t, nil, "us-west1"), "FAIL: 10 of 30 requests failed, more than -max-error-ratio=0.05", ""},
		{"the route leads to another region", routeServer(t, map[string]string{"asia-northeast1": "us-east1"}), "FAIL: no answer from asia-northeast1",
			"10  asked X-Hello-Canary for asia-northeast1, answered by us-east1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.wantMsg == "" {
				stdout, stderr, err := probeRun(t, append([]string{"-url", tt.srv.URL, "-json"}, base...)...)
				if err != nil {
					t.Fatalf("probe = %v, want success; stderr:\n%s", err, stderr)
				}
				var got struct {
					Regions []struct {
						Region string
						Count  int
					}
				}
				if err := json.Unmarshal([]byte(stdout), &got); err != nil {
					t.Fatalf("probe -json: %v\n%s", err, stdout)
				}
				counts := map[string]int{}
				for _, r := range got.Regions {
					counts[r.Region] = r.Count
				}
				if want := map[string]int{"us-east1": 10, "us-west1": 10, "asia-northeast1": 10}; !maps.Equal(counts, want) {
					t.Errorf("answers by region = %v, want %v", counts, want)
				}
				return
			}
			stdout, stderr, err := probeRun(t, append([]string{"-url", tt.srv.URL}, base...)...)
			if !errors.Is(err, errFailed) || !strings.Contains(stderr, tt.wantMsg) {
				t.Errorf("probe = %v, stderr:\n%s\nwant failure with %q", err, stderr, tt.wantMsg)
			}
			if tt.wantErrLine != "" && !strings.Contains(stdout, tt.wantErrLine) {
				t.Errorf("the errors lack %q:\n%s", tt.wantErrLine, stdout)
			}
		})
	}
}
