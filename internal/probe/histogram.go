package probe

import (
	"maps"
	"math"
	"slices"
	"time"
)

// bucketGrowth is the width of a histogram bucket: each is 2% wider than the
// one before, so a percentile read from the histogram is within 2% of the
// exact one.
const bucketGrowth = 1.02

// histogram counts latencies in logarithmic buckets, so that a watch that runs
// for days keeps its summary in fixed memory instead of every sample.
type histogram struct {
	counts map[int]int
	n      int
	max    time.Duration
}

func newHistogram() *histogram { return &histogram{counts: map[int]int{}} }

func bucketOf(d time.Duration) int {
	if d < time.Microsecond {
		return 0
	}
	return int(math.Log(float64(d)/float64(time.Microsecond))/math.Log(bucketGrowth)) + 1
}

// upper is the largest latency bucket b holds.
func upper(b int) time.Duration {
	if b == 0 {
		return time.Microsecond
	}
	return time.Duration(float64(time.Microsecond) * math.Pow(bucketGrowth, float64(b)))
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.n++
	h.max = max(h.max, d)
}

// latencies returns nearest-rank percentiles, each the upper bound of its
// bucket (capped at the largest latency seen).
func (h *histogram) latencies() Latencies {
	if h.n == 0 {
		return Latencies{}
	}
	buckets := slices.Sorted(maps.Keys(h.counts))
	at := func(p float64) time.Duration {
		rank := int(math.Ceil(p * float64(h.n)))
		seen := 0
		for _, b := range buckets {
			seen += h.counts[b]
			if seen >= rank {
				return min(upper(b), h.max)
			}
		}
		return h.max
	}
	return Latencies{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: h.max}
}

// totals is a running summary of samples in fixed memory.
type totals struct {
	requests, errors int
	overall          *histogram
	regions          map[string]*histogram
	byError          map[string]int
}

func newTotals() *totals {
	return &totals{overall: newHistogram(), regions: map[string]*histogram{}, byError: map[string]int{}}
}

func (t *totals) add(s Sample) {
	t.requests++
	if s.Err != "" {
		t.errors++
		t.byError[s.Err]++
		return
	}
	h, ok := t.regions[s.Region]
	if !ok {
		h = newHistogram()
		t.regions[s.Region] = h
	}
	h.add(s.Latency)
	t.overall.add(s.Latency)
}

// result turns the totals into a Result, ordered as Summarise orders it.
func (t *totals) result() Result {
	r := Result{Requests: t.requests, Errors: t.errors, Overall: t.overall.latencies()}
	for region, h := range t.regions {
		r.Regions = append(r.Regions, RegionCount{Region: region, Count: h.n, Latencies: h.latencies()})
	}
	for e, n := range t.byError {
		r.ErrorCounts = append(r.ErrorCounts, ErrorCount{Error: e, Count: n})
	}
	sortResult(&r)
	return r
}
