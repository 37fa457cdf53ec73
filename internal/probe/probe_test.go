package probe

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// regionsServer answers like the hello service: request i gets region
// regions[i % len(regions)]; a region "" answers 503 instead.
func regionsServer(t *testing.T, regions ...string) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		region := regions[int(n.Add(1)-1)%len(regions)]
		if region == "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, `{"status":"draining"}`)
			return
		}
		fmt.Fprintf(w, `{"message":"Hello world!","region":%q}`+"\n", region)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRunCountsRegionsAndErrors(t *testing.T) {
	t.Parallel()
	srv := regionsServer(t, "europe-west1", "europe-west1", "us-east1", "")
	var progressCalls atomic.Int32
	res, err := Run(context.Background(), Options{URL: srv.URL, Requests: 400, Concurrency: 1}, time.Millisecond,
		func(done, failed int) { progressCalls.Add(1) })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Requests != 400 || res.Errors != 100 {
		t.Errorf("Run = %d requests, %d errors; want 400, 100", res.Requests, res.Errors)
	}
	if got := res.Count("europe-west1"); got != 200 {
		t.Errorf("europe-west1 answers = %d, want 200", got)
	}
	if got := res.Count("us-east1"); got != 100 {
		t.Errorf("us-east1 answers = %d, want 100", got)
	}
	if len(res.Regions) != 2 || res.Regions[0].Region != "europe-west1" {
		t.Errorf("regions = %+v, want europe-west1 first, then us-east1", res.Regions)
	}
	if len(res.ErrorCounts) != 1 || res.ErrorCounts[0].Count != 100 || !strings.HasPrefix(res.ErrorCounts[0].Error, "status 503") {
		t.Errorf("error counts = %+v, want 100 × status 503", res.ErrorCounts)
	}
	if progressCalls.Load() == 0 {
		t.Errorf("progress was never called")
	}
}

func TestRunReportsTransportErrorsWithoutTheURL(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	res, err := Run(context.Background(), Options{URL: url, Requests: 3, Concurrency: 2}, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 3 || len(res.ErrorCounts) != 1 || !strings.Contains(res.ErrorCounts[0].Error, "connection refused") ||
		strings.Contains(res.ErrorCounts[0].Error, "Get ") {
		t.Errorf("errors = %+v, want 3 × one connection refused without the method and URL", res.ErrorCounts)
	}
}

func TestRunNeedsARegionInTheAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") }))
	t.Cleanup(srv.Close)
	res, err := Run(context.Background(), Options{URL: srv.URL, Requests: 2, Concurrency: 1}, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 2 || !strings.HasPrefix(res.ErrorCounts[0].Error, "no region in the answer") {
		t.Errorf("errors = %+v, want 2 × no region", res.ErrorCounts)
	}
}

func TestWatchPrintsWindowsAndFinishesRequestsInFlight(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		fmt.Fprintln(w, `{"region":"asia-northeast1"}`)
	}))
	t.Cleanup(slow.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	var windows []Window
	res, err := Watch(ctx, Options{URL: slow.URL, Concurrency: 4}, 100*time.Millisecond, func(w Window) { windows = append(windows, w) })
	if err != nil {
		t.Fatal(err)
	}
	if len(windows) < 3 {
		t.Fatalf("got %d windows in 350ms at one per 100ms, want at least 3", len(windows))
	}
	sum := 0
	for _, w := range windows {
		sum += w.Regions["asia-northeast1"] + w.Errors
	}
	if sum != res.Requests {
		t.Errorf("windows add up to %d requests, the summary says %d", sum, res.Requests)
	}
	if res.Errors != 0 {
		t.Errorf("errors = %+v; requests in flight at the stop must finish, not fail", res.ErrorCounts)
	}
	if line := FormatWindow(windows[0]); !strings.Contains(line, "asia-northeast1 ") || !strings.Contains(line, "errors 0") {
		t.Errorf("watch line = %q, want the region's count and the errors", line)
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	var ls []time.Duration
	for i := 1; i <= 100; i++ {
		ls = append(ls, time.Duration(i)*time.Millisecond)
	}
	got := percentiles(ls)
	want := Latencies{P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("percentiles(1..100ms) = %+v, want %+v", got, want)
	}
	if got := percentiles([]time.Duration{7}); got.P50 != 7 || got.P99 != 7 {
		t.Errorf("percentiles of one sample = %+v, want it everywhere", got)
	}
	if got := percentiles(nil); got != (Latencies{}) {
		t.Errorf("percentiles(nil) = %+v, want zeros", got)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{URL: "example.com", Concurrency: 1},
		{URL: "ftp://example.com/", Concurrency: 1},
		{URL: "http://example.com/", Concurrency: 0},
		{URL: "http://example.com/", Concurrency: 1, Rate: -1},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", o)
		}
	}
}

func TestWatchCountsRequestsThatHangPastTheStop(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(func() { close(release); hang.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res, err := Watch(ctx, Options{URL: hang.URL, Concurrency: 2, Timeout: 300 * time.Millisecond}, time.Second, func(Window) {})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 2 || res.Requests != 2 {
		t.Errorf("Watch = %d requests, %d errors; want the 2 hanging requests counted as failed", res.Requests, res.Errors)
	}
}

func TestHistogramPercentilesAreWithinTwoPercent(t *testing.T) {
	t.Parallel()
	h := newHistogram()
	var ls []time.Duration
	for i := 1; i <= 10000; i++ {
		d := time.Duration(i) * 37 * time.Microsecond
		h.add(d)
		ls = append(ls, d)
	}
	exact, got := percentiles(ls), h.latencies()
	for _, c := range []struct {
		name       string
		exact, got time.Duration
	}{{"p50", exact.P50, got.P50}, {"p90", exact.P90, got.P90}, {"p99", exact.P99, got.P99}, {"max", exact.Max, got.Max}} {
		if c.got < c.exact || float64(c.got) > float64(c.exact)*bucketGrowth {
			t.Errorf("%s from the histogram = %v, exact %v: want within 2%% above", c.name, c.got, c.exact)
		}
	}
}

func TestExpectFailures(t *testing.T) {
	t.Parallel()
	r := Result{Requests: 100, Errors: 5, Regions: []RegionCount{
		{Region: "us-east1", Count: 60, Latencies: Latencies{P99: 400 * time.Millisecond}},
		{Region: "us-west1", Count: 35, Latencies: Latencies{P99: 900 * time.Millisecond}},
	}}
	tests := []struct {
		name   string
		expect Expect
		want   []string
	}{
		{"nothing asked", Expect{MaxErrors: 5}, nil},
		{"too many errors", Expect{MaxErrors: 4}, []string{"5 requests failed, more than -max-errors=4"}},
		{"ratio replaces the count", Expect{MaxErrors: 0, MaxErrorRatio: 0.05}, nil},
		{"ratio passed", Expect{MaxErrorRatio: 0.04}, []string{"5 of 100 requests failed, more than -max-error-ratio=0.04"}},
		{"slow region", Expect{MaxErrors: 5, MaxP99: 500 * time.Millisecond}, []string{"us-west1 answered with a p99 latency of 900ms, more than 500ms"}},
		{"one of the regions answered", Expect{MaxErrors: 5, Regions: []string{"us-east1", "us-west1", "asia-northeast1"}}, nil},
		{"each region must answer", Expect{MaxErrors: 5, Regions: []string{"us-east1", "us-west1", "asia-northeast1"}, EachRegion: true}, []string{"no answer from asia-northeast1"}},
		{"a region not asked for", Expect{MaxErrors: 5, Regions: []string{"us-east1"}}, []string{"35 answers from us-west1, want only us-east1"}},
		{"none of the regions answered", Expect{MaxErrors: 5, Regions: []string{"asia-northeast1", "europe-west1"}}, []string{
			"60 answers from us-east1, want only asia-northeast1, europe-west1", "35 answers from us-west1, want only asia-northeast1, europe-west1",
			"no answer from asia-northeast1, europe-west1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.expect.Failures(r); strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
				t.Errorf("Failures = %q, want %q", got, tt.want)
			}
		})
	}
	if got := (Expect{MaxErrorRatio: 0.05}).Failures(Result{}); len(got) != 1 || got[0] != "no request was sent" {
		t.Errorf("a probe that sent nothing: Failures = %q, want one failure", got)
	}
	// At the limit exactly, in every share of 100 requests.
	for errs := 1; errs < 100; errs++ {
		ratio, _ := strconv.ParseFloat(fmt.Sprintf("0.%02d", errs), 64)
		if got := (Expect{MaxErrorRatio: ratio}).Failures(Result{Requests: 100, Errors: errs}); got != nil {
			t.Errorf("%d of 100 failed with -max-error-ratio=%g: Failures = %q, want none", errs, ratio, got)
		}
		if got := (Expect{MaxErrorRatio: ratio}).Failures(Result{Requests: 100, Errors: errs + 1}); got == nil {
			t.Errorf("%d of 100 failed with -max-error-ratio=%g: no failure", errs+1, ratio)
		}
	}
}
