package faults

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// The objectives part of the harness: what deploy/terraform/monitoring.tf's
// service level objectives and burn-rate alerts would have done with each row's
// requests, as the load balancer counts them (every request a user sent, by the
// answer it got), in the harness's time: every window divided by ReleaseTimeScale,
// as the release policy is.

// Objectives are the objectives and burn-rate alerts of monitoring.tf (a test in
// deploy/ checks them against its variables' defaults).
type Objectives struct {
	// Availability is the share of requests that must not fail; Latency the
	// share of answers that must come within LatencyThreshold.
	Availability, Latency float64
	LatencyThreshold      time.Duration
	// Period is the objectives' rolling period: their error budget is what
	// the goals leave of a period's requests.
	Period time.Duration
	// Alerts are the burn-rate alerts, each on every objective.
	Alerts []BurnRateAlert
}

// BurnRateAlert opens when an objective's budget burns faster than Rate over
// both its Long and its Short window; Severity is "page" or "ticket".
type BurnRateAlert struct {
	Severity    string
	Long, Short time.Duration
	Rate        float64
}

// DefaultObjectives returns monitoring.tf's defaults at their real scale:
// slo_availability_goal, slo_latency_goal, slo_latency_threshold_ms,
// slo_period_days and burn_rate_alerts (the SRE workbook's table 5-8).
func DefaultObjectives() Objectives {
	return Objectives{
		Availability:     0.999,
		Latency:          0.99,
		LatencyThreshold: 500 * time.Millisecond,
		Period:           28 * 24 * time.Hour,
		Alerts: []BurnRateAlert{
			{Severity: "page", Long: time.Hour, Short: 5 * time.Minute, Rate: 14.4},
			{Severity: "page", Long: 6 * time.Hour, Short: 30 * time.Minute, Rate: 6},
			{Severity: "ticket", Long: 72 * time.Hour, Short: 6 * time.Hour, Rate: 1},
		},
	}
}

// Scaled returns o with its period and windows divided by n; the latency
// threshold is not scaled.
func (o Objectives) Scaled(n int) Objectives {
	d := time.Duration(n)
	o.Period /= d
	o.Alerts = slices.Clone(o.Alerts)
	for i := range o.Alerts {
		o.Alerts[i].Long /= d
		o.Alerts[i].Short /= d
	}
	return o
}

// String says the objectives in one line.
func (o Objectives) String() string {
	var alerts []string
	for _, a := range o.Alerts {
		alerts = append(alerts, fmt.Sprintf("%s at a burn rate over %g for %s and %s", a.Severity, a.Rate, a.Long, a.Short))
	}
	return fmt.Sprintf("%g %% of requests not failed and %g %% answered within %s, over %s; %s",
		100*o.Availability, 100*o.Latency, o.LatencyThreshold, o.Period, strings.Join(alerts, "; "))
}

// Burn is what the objectives would have made of a row's requests.
type Burn struct {
	// Availability and Latency are the shares of each objective's budget for
	// a whole period that the row's failed and late requests spent; NaN when
	// the row had no users' requests, so no budget.
	Availability, Latency float64
	// Page and Ticket are when the first page and the first ticket would
	// have opened, since the row's load began; Paged and Ticketed say whether
	// they did. Why names the objective and the alert.
	Page, Ticket       time.Duration
	Paged, Ticketed    bool
	PageWhy, TicketWhy string
}

// burnStep is how often the alerts are evaluated: every 6 s at full scale.
const burnStep = 100 * time.Millisecond

// burn evaluates o's alerts on outcomes, a row's requests sent at rate a
// second from its start (times since then) to ended. A window that reaches back
// before the row counts that part as served at the same rate without a failure:
// the row's load stands for a service that was healthy before it. Failed means
// any failure (an error status, or none at all); late, an answer after
// o.LatencyThreshold.
func burn(outcomes []outcome, rate float64, o Objectives, ended time.Duration) Burn {
	b := Burn{Availability: math.NaN(), Latency: math.NaN()}
	if rate <= 0 || len(outcomes) == 0 {
		return b
	}
	starts := make([]time.Duration, len(outcomes))
	sorted := slices.Clone(outcomes)
	slices.SortFunc(sorted, func(a, b outcome) int { return int(a.start - b.start) })
	// Prefix sums of the requests sent, failed, answered and answered late: the
	// first i requests hold requests[i] of them, failed[i] failed, and so on.
	n := len(sorted)
	requests, failed, answered, late := make([]int, n+1), make([]int, n+1), make([]int, n+1), make([]int, n+1)
	for i, out := range sorted {
		starts[i] = out.start
		requests[i+1], failed[i+1], answered[i+1], late[i+1] = i+1, failed[i], answered[i], late[i]
		switch {
		case out.failure != "":
			failed[i+1]++
		case out.latency > o.LatencyThreshold:
			answered[i+1]++
			late[i+1]++
		default:
			answered[i+1]++
		}
	}
	budget := rate * o.Period.Seconds()
	b.Availability = float64(failed[n]) / ((1 - o.Availability) * budget)
	b.Latency = float64(late[n]) / ((1 - o.Latency) * budget)

	// in returns the prefix-sum difference of xs over the requests sent in
	// (t-w, t], and the requests the window holds from before the row.
	in := func(xs []int, t, w time.Duration) (count int, before float64) {
		i := sort.Search(n, func(k int) bool { return starts[k] > t-w })
		j := sort.Search(n, func(k int) bool { return starts[k] > t })
		return xs[j] - xs[i], rate * max(0, (w-t).Seconds())
	}
	ratio := func(bads, totals []int, t, w time.Duration, goal float64) float64 {
		badCount, _ := in(bads, t, w)
		total, before := in(totals, t, w)
		if float64(total)+before == 0 {
			return 0
		}
		return float64(badCount) / (float64(total) + before) / (1 - goal)
	}
	for t := burnStep; t <= ended; t += burnStep {
		for _, a := range o.Alerts {
			for _, obj := range []struct {
				name        string
				bads, total []int
				goal        float64
			}{{"availability", failed, requests, o.Availability}, {"latency", late, answered, o.Latency}} {
				if ratio(obj.bads, obj.total, t, a.Long, obj.goal) <= a.Rate || ratio(obj.bads, obj.total, t, a.Short, obj.goal) <= a.Rate {
					continue
				}
				why := fmt.Sprintf("%s burning over %g for %s and %s", obj.name, a.Rate, a.Long, a.Short)
				switch {
				case a.Severity == "page" && !b.Paged:
					b.Paged, b.Page, b.PageWhy = true, t, why
				case a.Severity == "ticket" && !b.Ticketed:
					b.Ticketed, b.Ticket, b.TicketWhy = true, t, why
				}
			}
		}
	}
	return b
}

// budget says the shares of the budgets spent, for a report.
func (b Burn) budget() string {
	if math.IsNaN(b.Availability) {
		return "- (no users' requests)"
	}
	return fmt.Sprintf("%s / %s", budgetShare(b.Availability), budgetShare(b.Latency))
}

// budgetShare says a share of a budget as a percentage.
func budgetShare(f float64) string {
	switch {
	case f == 0:
		return "0"
	case f < 0.0001:
		return "< 0.01 %"
	}
	return fmt.Sprintf("%.2f %%", 100*f)
}

// page says when a page would have opened, since from (the fault, or the new
// revision's first traffic), for a report.
func (b Burn) page(from time.Duration) string {
	if !b.Paged {
		return "no"
	}
	return fmt.Sprintf("after %s (%s)", seconds(b.Page-from), b.PageWhy)
}

// ticket says when a ticket would have opened, since from, for a report.
func (b Burn) ticket(from time.Duration) string {
	if !b.Ticketed {
		return "no"
	}
	return fmt.Sprintf("after %s (%s)", seconds(b.Ticket-from), b.TicketWhy)
}

// pageWithin is how soon after users first meet a bad version a page must open:
// the shortest short window of the paging alerts, in the harness's time.
func pageWithin() time.Duration {
	var d time.Duration
	for _, a := range DefaultObjectives().Scaled(ReleaseTimeScale).Alerts {
		if a.Severity == "page" && (d == 0 || a.Short < d) {
			d = a.Short
		}
	}
	return d
}
