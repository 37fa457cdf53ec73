package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable prints r as a table: one row a region, one for all, then the errors.
func WriteTable(w io.Writer, r Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "region\tanswers\t%\tp50\tp90\tp99\tmax\t")
	pct := func(n int) string {
		if r.Requests == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", 100*float64(n)/float64(r.Requests))
	}
	row := func(name string, n int, l Latencies) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", name, n, pct(n), ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
	}
	for _, rc := range r.Regions {
		row(rc.Region, rc.Count, rc.Latencies)
	}
	row("all answers", r.Requests-r.Errors, r.Overall)
	tw.Flush()
	fmt.Fprintf(w, "\nerrors: %d of %d requests\n", r.Errors, r.Requests)
	for _, e := range r.ErrorCounts {
		fmt.Fprintf(w, "  %6d  %s\n", e.Count, e.Error)
	}
}

// FormatWindow returns a watch line: the time, each region's answers, the errors
// and the window's latency.
func FormatWindow(w Window) string {
	var b strings.Builder
	b.WriteString(w.Start.Format("15:04:05"))
	regions := make([]string, 0, len(w.Regions))
	for r := range w.Regions {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	for _, r := range regions {
		fmt.Fprintf(&b, "  %s %d", r, w.Regions[r])
	}
	if len(regions) == 0 {
		b.WriteString("  (no answers)")
	}
	fmt.Fprintf(&b, "  errors %d  p50 %s  p99 %s", w.Errors, ms(w.Result.Overall.P50), ms(w.Result.Overall.P99))
	return b.String()
}

// jsonResult is Result as the -json output shows it, with times in milliseconds.
type jsonResult struct {
	URL            string       `json:"url,omitempty"`
	Time           string       `json:"time,omitempty"`
	Requests       int          `json:"requests"`
	Errors         int          `json:"errors"`
	ElapsedSeconds float64      `json:"elapsed_seconds,omitempty"`
	Overall        jsonLatency  `json:"overall"`
	Regions        []jsonRegion `json:"regions"`
	ErrorCounts    []ErrorCount `json:"error_counts"`
}

type jsonRegion struct {
	Region string `json:"region"`
	Count  int    `json:"count"`
	jsonLatency
}

type jsonLatency struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// WriteJSON prints r as one line of JSON. url and at are included when set.
func WriteJSON(w io.Writer, r Result, url string, at time.Time) error {
	out := jsonResult{
		URL:         url,
		Requests:    r.Requests,
		Errors:      r.Errors,
		Overall:     toJSON(r.Overall),
		Regions:     []jsonRegion{},
		ErrorCounts: r.ErrorCounts,
	}
	if out.ErrorCounts == nil {
		out.ErrorCounts = []ErrorCount{}
	}
	if !at.IsZero() {
		out.Time = at.UTC().Format(time.RFC3339)
	}
	if r.Elapsed > 0 {
		out.ElapsedSeconds = r.Elapsed.Seconds()
	}
	for _, rc := range r.Regions {
		out.Regions = append(out.Regions, jsonRegion{Region: rc.Region, Count: rc.Count, jsonLatency: toJSON(rc.Latencies)})
	}
	return json.NewEncoder(w).Encode(out)
}

func toJSON(l Latencies) jsonLatency {
	f := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return jsonLatency{P50: f(l.P50), P90: f(l.P90), P99: f(l.P99), Max: f(l.Max)}
}

// ms formats d in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 100:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.0fms", v)
	}
}
