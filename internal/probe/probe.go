// Package probe sends requests to the hello service, usually through a load
// balancer, and reports which regions answered, how fast, and what failed.
package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options says what to send.
type Options struct {
	URL string
	// Requests is how many requests a Run sends; Watch ignores it.
	Requests int
	// Concurrency is how many requests are in flight at most.
	Concurrency int
	// Rate caps requests per second across all workers; 0 means no cap.
	Rate float64
	// Timeout bounds each request.
	Timeout time.Duration
	// RouteHeader, when set, is a header each request carries with one of
	// Routes as its value, in turn: the route that asks a load balancer for one
	// region (deploy/terraform's canary routes). Each answer must then come from
	// the region its request asked for, or it counts as an error.
	RouteHeader string
	Routes      []string
}

// DefaultTimeout bounds each request unless Options.Timeout says otherwise.
const DefaultTimeout = 5 * time.Second

// Sample is the outcome of one request.
type Sample struct {
	Region  string // empty on error
	Latency time.Duration
	Err     string // empty on success
}

// Result summarises samples.
type Result struct {
	Requests int
	Errors   int
	Elapsed  time.Duration
	Overall  Latencies
	// Regions are sorted by number of answers, most first.
	Regions []RegionCount
	// ErrorCounts are the distinct errors, most frequent first.
	ErrorCounts []ErrorCount
}

// RegionCount is how often one region answered, and how fast.
type RegionCount struct {
	Region string
	Count  int
	Latencies
}

// ErrorCount is how often one error happened.
type ErrorCount struct {
	Error string `json:"error"`
	Count int    `json:"count"`
}

// Latencies are nearest-rank percentiles of successful requests.
type Latencies struct {
	P50, P90, P99, Max time.Duration
}

// Validate checks o and fills in defaults.
func (o *Options) Validate() error {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q: want an http:// or https:// URL", o.URL)
	}
	if o.Concurrency < 1 {
		return fmt.Errorf("-c %d: want at least 1", o.Concurrency)
	}
	if o.Rate < 0 {
		return fmt.Errorf("-rate %v: want 0 (no cap) or more", o.Rate)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if (o.RouteHeader == "") != (len(o.Routes) == 0) {
		return errors.New("-route-header needs -expect-region: the regions to ask for, one a request in turn")
	}
	return nil
}

// Run sends o.Requests requests and summarises them. progress, when not nil, is
// called about every interval with the number done and failed so far.
func Run(ctx context.Context, o Options, interval time.Duration, progress func(done, failed int)) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	if o.Requests < 1 {
		return Result{}, fmt.Errorf("-n %d: want at least 1", o.Requests)
	}
	var (
		mu      sync.Mutex
		samples []Sample
		failed  int
	)
	start := time.Now()
	stopProgress := make(chan struct{})
	var wg sync.WaitGroup
	if progress != nil {
		wg.Go(func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					mu.Lock()
					done, f := len(samples), failed
					mu.Unlock()
					progress(done, f)
				}
			}
		})
	}
	send(ctx, o, o.Requests, false, func(s Sample) {
		mu.Lock()
		samples = append(samples, s)
		if s.Err != "" {
			failed++
		}
		mu.Unlock()
	})
	close(stopProgress)
	wg.Wait()
	if progress != nil {
		progress(len(samples), failed)
	}
	r := Summarise(samples)
	r.Elapsed = time.Since(start)
	if len(samples) < o.Requests {
		return r, fmt.Errorf("stopped after %d of %d requests: %w", len(samples), o.Requests, context.Cause(ctx))
	}
	return r, nil
}

// Window is what one second of a Watch saw.
type Window struct {
	Start   time.Time
	Regions map[string]int
	Errors  int
	Result  Result // the window's own summary
}

// Watch sends requests until ctx ends and calls line with each second's window.
// It returns the summary of everything it sent. Its memory stays fixed however
// long it runs: only the current window's samples are kept, and the summary's
// percentiles come from a histogram, within 2% of the exact figures.
func Watch(ctx context.Context, o Options, every time.Duration, line func(Window)) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	var (
		mu     sync.Mutex
		all    = newTotals()
		window []Sample
	)
	start := time.Now()
	windowStart := start
	flush := func(now time.Time) {
		mu.Lock()
		w := window
		window = nil
		ws := windowStart
		windowStart = now
		mu.Unlock()
		r := Summarise(w)
		counts := map[string]int{}
		for _, rc := range r.Regions {
			counts[rc.Region] = rc.Count
		}
		line(Window{Start: ws, Regions: counts, Errors: r.Errors, Result: r})
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				flush(now)
			}
		}
	})
	send(ctx, o, 0, true, func(s Sample) {
		mu.Lock()
		all.add(s)
		window = append(window, s)
		mu.Unlock()
	})
	close(done)
	wg.Wait()
	flush(time.Now())
	r := all.result()
	r.Elapsed = time.Since(start)
	return r, nil
}

// send runs o.Concurrency workers until n requests are done (n = 0: until ctx
// ends) and hands each sample to record. When ctx ends, requests in flight are
// cancelled and not counted, unless finish is set: then they run to their end
// (within o.Timeout) and count, so that a watch cannot hide requests that hang.
func send(ctx context.Context, o Options, n int, finish bool, record func(Sample)) {
	reqCtx := ctx
	if finish {
		reqCtx = context.WithoutCancel(ctx)
	}
	client := &http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			// As many connections as requests in flight, no more: the transport
			// would otherwise dial extras when none is idle at that instant.
			MaxConnsPerHost:     o.Concurrency,
			MaxIdleConnsPerHost: o.Concurrency,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	defer client.CloseIdleConnections()

	jobs := make(chan string)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for route := range jobs {
				s := fetch(reqCtx, client, o.URL, o.RouteHeader, route)
				// A request cut short because the probe itself is stopping says
				// nothing about the service: it is not counted.
				if s.Err != "" && reqCtx.Err() != nil {
					continue
				}
				record(s)
			}
		})
	}

	var tick <-chan time.Time
	if o.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
		defer t.Stop()
		tick = t.C
	}
feed:
	for i := 0; n == 0 || i < n; i++ {
		if tick != nil {
			select {
			case <-ctx.Done():
				break feed
			case <-tick:
			}
		}
		var route string
		if len(o.Routes) > 0 {
			route = o.Routes[i%len(o.Routes)]
		}
		select {
		case <-ctx.Done():
			break feed
		case jobs <- route:
		}
	}
	close(jobs)
	wg.Wait()
}

// answer is the part of GET / that the probe reads.
type answer struct {
	Region string `json:"region"`
}

// fetch sends one GET and reads the region from the answer. With a route, the
// request carries header: route, and the answer must come from region route.
func fetch(ctx context.Context, client *http.Client, target, header, route string) Sample {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return Sample{Err: err.Error()}
	}
	req.Header.Set("User-Agent", "hello-probe")
	if header != "" {
		req.Header.Set(header, route)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Sample{Latency: time.Since(start), Err: describe(err)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	latency := time.Since(start)
	if err != nil {
		return Sample{Latency: latency, Err: "reading the answer: " + describe(err)}
	}
	if resp.StatusCode != http.StatusOK {
		return Sample{Latency: latency, Err: fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))}
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil || a.Region == "" {
		return Sample{Latency: latency, Err: fmt.Sprintf("no region in the answer %.80q", body)}
	}
	if route != "" && a.Region != route {
		return Sample{Latency: latency, Err: fmt.Sprintf("asked %s for %s, answered by %s", header, route, a.Region)}
	}
	return Sample{Region: a.Region, Latency: latency}
}

// describe drops the method and URL that net/http puts in front of every
// transport error, so that the same failure counts as one kind of error.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// Summarise counts samples by region and error and computes percentiles.
func Summarise(samples []Sample) Result {
	r := Result{Requests: len(samples)}
	byRegion := map[string][]time.Duration{}
	byError := map[string]int{}
	var all []time.Duration
	for _, s := range samples {
		if s.Err != "" {
			r.Errors++
			byError[s.Err]++
			continue
		}
		byRegion[s.Region] = append(byRegion[s.Region], s.Latency)
		all = append(all, s.Latency)
	}
	r.Overall = percentiles(all)
	for region, ls := range byRegion {
		r.Regions = append(r.Regions, RegionCount{Region: region, Count: len(ls), Latencies: percentiles(ls)})
	}
	for e, n := range byError {
		r.ErrorCounts = append(r.ErrorCounts, ErrorCount{Error: e, Count: n})
	}
	sortResult(&r)
	return r
}

// sortResult orders regions by answers and errors by count, most first.
func sortResult(r *Result) {
	sort.Slice(r.Regions, func(i, j int) bool {
		if r.Regions[i].Count != r.Regions[j].Count {
			return r.Regions[i].Count > r.Regions[j].Count
		}
		return r.Regions[i].Region < r.Regions[j].Region
	})
	sort.Slice(r.ErrorCounts, func(i, j int) bool {
		if r.ErrorCounts[i].Count != r.ErrorCounts[j].Count {
			return r.ErrorCounts[i].Count > r.ErrorCounts[j].Count
		}
		return r.ErrorCounts[i].Error < r.ErrorCounts[j].Error
	})
}

// percentiles returns nearest-rank percentiles of ls.
func percentiles(ls []time.Duration) Latencies {
	if len(ls) == 0 {
		return Latencies{}
	}
	s := slices.Clone(ls)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Latencies{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: s[len(s)-1]}
}

// Count returns how many answers came from region.
func (r Result) Count(region string) int {
	for _, rc := range r.Regions {
		if rc.Region == region {
			return rc.Count
		}
	}
	return 0
}

// Expect is what a probe's answers must show.
type Expect struct {
	// Regions, when not empty, are the only regions that may answer; one of
	// them must answer at least once, or each of them with EachRegion (a probe
	// that asked each region by route).
	Regions    []string
	EachRegion bool
	// MaxErrors is how many requests may fail; MaxErrorRatio, when above 0,
	// replaces it with a share of the requests sent.
	MaxErrors     int
	MaxErrorRatio float64
	// MaxP99, when above 0, bounds the 99th percentile latency of each
	// region's answers.
	MaxP99 time.Duration
}

// Failures returns what r does not show of e, one sentence each; none when r
// meets e. A probe whose requests all failed has no answer to show, so it fails
// any expectation of regions, and any error limit below all of its requests.
func (e Expect) Failures(r Result) []string {
	var out []string
	if e.MaxErrorRatio > 0 {
		// A division, not MaxErrorRatio×Requests: 29 of 100 is within 0.29, and
		// 0.29×100 is a little under 29 in floating point.
		switch {
		case r.Requests == 0:
			out = append(out, "no request was sent")
		case float64(r.Errors)/float64(r.Requests) > e.MaxErrorRatio:
			out = append(out, fmt.Sprintf("%d of %d requests failed, more than -max-error-ratio=%g", r.Errors, r.Requests, e.MaxErrorRatio))
		}
	} else if r.Errors > e.MaxErrors {
		out = append(out, fmt.Sprintf("%d requests failed, more than -max-errors=%d", r.Errors, e.MaxErrors))
	}
	for _, rc := range r.Regions {
		if len(e.Regions) > 0 && !slices.Contains(e.Regions, rc.Region) {
			out = append(out, fmt.Sprintf("%d answers from %s, want only %s", rc.Count, rc.Region, strings.Join(e.Regions, ", ")))
		}
		if e.MaxP99 > 0 && rc.P99 > e.MaxP99 {
			out = append(out, fmt.Sprintf("%s answered with a p99 latency of %s, more than %s", rc.Region, rc.P99.Round(time.Millisecond), e.MaxP99))
		}
	}
	answered := 0
	for _, region := range e.Regions {
		answered += r.Count(region)
		if e.EachRegion && r.Count(region) == 0 {
			out = append(out, "no answer from "+region)
		}
	}
	if len(e.Regions) > 0 && !e.EachRegion && answered == 0 {
		out = append(out, "no answer from "+strings.Join(e.Regions, ", "))
	}
	return out
}
