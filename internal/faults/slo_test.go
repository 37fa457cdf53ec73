package faults

import (
	"math"
	"strings"
	"testing"
	"time"
)

// steady returns the outcomes of a load at rate a second for d, each failed
// (or answered after late) when fail says so at its start.
func steady(rate int, d time.Duration, fail func(at time.Duration) bool, late time.Duration) []outcome {
	var out []outcome
	for i := 0; time.Duration(i)*time.Second/time.Duration(rate) < d; i++ {
		at := time.Duration(i) * time.Second / time.Duration(rate)
		o := outcome{start: at, latency: time.Millisecond, region: "r"}
		if fail(at) {
			o.failure, o.region = "status 500", ""
		} else if late > 0 {
			o.latency = late
		}
		out = append(out, o)
	}
	return out
}

func TestBurnRateAlertsPageOnWhatUsersSeeAndNotOnABlip(t *testing.T) {
	t.Parallel()
	o := DefaultObjectives().Scaled(ReleaseTimeScale)
	never := func(time.Duration) bool { return false }
	between := func(from, to time.Duration) func(time.Duration) bool {
		return func(at time.Duration) bool { return at >= from && at < to }
	}
	for _, tt := range []struct {
		name       string
		outcomes   []outcome
		wantPage   bool
		wantTicket bool
		pageFrom   time.Duration // the page opens after this,
		pageBy     time.Duration // and by this
		wantWhy    string
		wantAvail  float64 // budget shares, ±1 %
		wantLate   float64
	}{
		{name: "nothing fails", outcomes: steady(500, 10*time.Second, never, 0)},
		// 0.1 s here is 6 s at full scale: 50 requests of the hour's 1.8 million.
		{name: "a blip", outcomes: steady(500, 10*time.Second, between(5*time.Second, 5100*time.Millisecond), 0), wantAvail: 50 / (0.001 * 500 * o.Period.Seconds())},
		// 78 % failing, as every region answering a bad release does.
		{name: "most requests fail", outcomes: steady(500, 10*time.Second, func(at time.Duration) bool { return at >= 2*time.Second && at.Milliseconds()%100 < 78 }, 0),
			wantPage: true, wantTicket: true, pageFrom: 2 * time.Second, pageBy: 2*time.Second + pageWithin(), wantWhy: "availability burning over 14.4",
			wantAvail: 0.78 * 8 * 500 / (0.001 * 500 * o.Period.Seconds())},
		// The latency budget is ten times the availability's: 14.4 % of the
		// hour's requests late, 8.64 s of them here (8.64 minutes at full scale).
		{name: "every answer late", outcomes: steady(500, 10*time.Second, never, 2*time.Second),
			wantPage: true, wantTicket: false, pageFrom: 8600 * time.Millisecond, pageBy: 8800 * time.Millisecond, wantWhy: "latency burning over 14.4",
			wantLate: 10 * 500 / (0.01 * 500 * o.Period.Seconds())},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := burn(tt.outcomes, 500, o, 10*time.Second)
			if b.Paged != tt.wantPage {
				t.Fatalf("paged = %v (%s at %s), want %v", b.Paged, b.PageWhy, b.Page, tt.wantPage)
			}
			if b.Paged && (b.Page <= tt.pageFrom || b.Page > tt.pageBy || !strings.HasPrefix(b.PageWhy, tt.wantWhy)) {
				t.Errorf("paged at %s (%s), want after %s and by %s, for %q", b.Page, b.PageWhy, tt.pageFrom, tt.pageBy, tt.wantWhy)
			}
			// 8 minutes of 78 % failing spend 0.15 % of three days' requests,
			// over the ticket's rate of 1: it opens too, only later.
			if b.Ticketed != tt.wantTicket || (b.Ticketed && b.Ticket < b.Page) {
				t.Errorf("ticket = %v at %s (%s), want %v, after the page", b.Ticketed, b.Ticket, b.TicketWhy, tt.wantTicket)
			}
			if math.Abs(b.Availability-tt.wantAvail) > 0.01*tt.wantAvail+1e-12 {
				t.Errorf("availability budget spent = %g, want %g", b.Availability, tt.wantAvail)
			}
			if math.Abs(b.Latency-tt.wantLate) > 0.01*tt.wantLate+1e-12 {
				t.Errorf("latency budget spent = %g, want %g", b.Latency, tt.wantLate)
			}
		})
	}
	if b := burn(nil, 0, o, 10*time.Second); b.Paged || !math.IsNaN(b.Availability) || b.budget() != "- (no users' requests)" {
		t.Errorf("a row without users' requests: %+v, want no page and no budget", b)
	}
}

func TestObjectivesScaleTheirWindowsNotTheirThreshold(t *testing.T) {
	t.Parallel()
	o, s := DefaultObjectives(), DefaultObjectives().Scaled(60)
	if s.Period != o.Period/60 || s.LatencyThreshold != o.LatencyThreshold || s.Alerts[0].Long != time.Minute || s.Alerts[0].Short != 5*time.Second || o.Alerts[0].Long != time.Hour {
		t.Errorf("scaled objectives %v from %v", s, o)
	}
	if pageWithin() != 5*time.Second {
		t.Errorf("pageWithin = %s, want 5s (5 minutes at full scale)", pageWithin())
	}
}
