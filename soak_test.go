//go:build soak

package main

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/hello/internal/probe"
)

// TestSoak sends a fixed rate for SOAK_DURATION (60s) and checks that nothing
// fails and nothing grows: goroutines and RSS in the last ten seconds against
// the ten after a five-second warm-up. The probe that sends the load runs in
// this process too; it keeps its summary in fixed memory. `make soak` runs it; it is behind the soak build tag because
// it takes a minute.
func TestSoak(t *testing.T) {
	duration := 60 * time.Second
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 20*time.Second {
			t.Fatalf("SOAK_DURATION=%q: want a duration of at least 20s", v)
		}
		duration = d
	}
	const rate = 1000
	s := startRun(t, map[string]string{"REGION": "europe-west1"})

	type sample struct {
		goroutines int
		rss        int64
		requests   int
		errors     int
	}
	var samples []sample
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	res, err := probe.Watch(ctx, probe.Options{URL: s.url + "/", Concurrency: 8, Rate: rate, Timeout: 5 * time.Second}, time.Second,
		func(w probe.Window) {
			// The probe's own goroutines are a fixed number (8 workers, 8 kept-alive
			// connections), so the count is flat unless the server leaks.
			samples = append(samples, sample{runtime.NumGoroutine(), rss(), w.Result.Requests, w.Errors})
			if n := len(samples); n%10 == 0 {
				t.Logf("%3ds: %d requests/s, %d errors, %d goroutines, RSS %.1f MiB", n, w.Result.Requests, w.Errors, samples[n-1].goroutines, float64(samples[n-1].rss)/(1<<20))
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) < 20 {
		t.Fatalf("only %d one-second samples", len(samples))
	}
	// The first five seconds warm up (connections open, the heap finds its
	// size); the last window is a fraction of a second. Both are left out.
	const warmUp = 5
	full := samples[:len(samples)-1]
	first, last := full[warmUp:warmUp+10], full[len(full)-10:]
	// Medians: a goroutine that lives for one request on either side moves a
	// single sample; a leak moves them all, and keeps growing.
	med := func(ss []sample, f func(sample) float64) float64 {
		vs := make([]float64, len(ss))
		for i, s := range ss {
			vs[i] = f(s)
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	g0, g1 := med(first, func(s sample) float64 { return float64(s.goroutines) }), med(last, func(s sample) float64 { return float64(s.goroutines) })
	r0, r1 := med(first, func(s sample) float64 { return float64(s.rss) }), med(last, func(s sample) float64 { return float64(s.rss) })
	t.Logf("soak: %d requests in %s at %d/s, %d errors", res.Requests, duration, rate, res.Errors)
	t.Logf("soak: goroutines (median) %.0f in seconds 5-15, %.0f in the last 10s", g0, g1)
	t.Logf("soak: RSS (median) %.1f MiB in seconds 5-15, %.1f MiB in the last 10s", r0/(1<<20), r1/(1<<20))
	t.Logf("soak: latency p50 %s, p99 %s, max %s", res.Overall.P50, res.Overall.P99, res.Overall.Max)

	if res.Errors != 0 {
		t.Errorf("%d requests failed: %+v", res.Errors, res.ErrorCounts)
	}
	if res.Requests < int(duration.Seconds())*rate*9/10 {
		t.Errorf("%d requests in %s, want about %d: the rate was not kept", res.Requests, duration, int(duration.Seconds())*rate)
	}
	if g1 > g0+5 {
		t.Errorf("goroutines grew from %.0f to %.0f: a leak", g0, g1)
	}
	if r1 > r0*1.10+(1<<20) {
		t.Errorf("RSS grew from %.1f MiB to %.1f MiB: more than 10%% + 1 MiB", r0/(1<<20), r1/(1<<20))
	}
}

// rss is this process's resident set size.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
