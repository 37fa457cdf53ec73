package faults

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDefectsBuildIntoServicesThatPassHealthAndFailRoot builds each bad
// release from the service's source, runs it, and checks that it is what the
// release rows need: a service that starts and passes /health/, and answers
// GET / wrongly. A change to the source that the defect no longer fits fails
// here, not halfway through a run.
func TestDefectsBuildIntoServicesThatPassHealthAndFailRoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct {
		defect     string
		wantStatus int
		wantSlower time.Duration
	}{
		{"500", http.StatusInternalServerError, 0},
		{"slow", http.StatusOK, 2 * time.Second},
	} {
		t.Run(tt.defect, func(t *testing.T) {
			binary, err := buildDefect(context.Background(), "../..", dir, defects[tt.defect])
			if err != nil {
				t.Fatal(err)
			}
			base := startBinary(t, binary)
			if status, _, _ := fetch(t, base+"/health/"); status != http.StatusOK {
				t.Errorf("GET /health/ from the %s defect = %d, want 200", tt.defect, status)
			}
			status, body, took := fetch(t, base+"/")
			if status != tt.wantStatus {
				t.Errorf("GET / from the %s defect = %d, want %d", tt.defect, status, tt.wantStatus)
			}
			if !strings.Contains(body, `"region":"defect-test"`) {
				t.Errorf("GET / from the %s defect = %q, want the usual answer naming the region", tt.defect, body)
			}
			if took < tt.wantSlower {
				t.Errorf("GET / from the %s defect took %s, want at least %s", tt.defect, took, tt.wantSlower)
			}
		})
	}
}

func TestADefectThatNoLongerFitsTheSourceIsRefused(t *testing.T) {
	t.Parallel()
	d := defects["500"]
	d.old = "text that is not in handlers.go"
	_, err := buildDefect(context.Background(), "../..", t.TempDir(), d)
	if err == nil || !strings.Contains(err.Error(), "0 times, want once") {
		t.Errorf("building a defect whose text is not in the source: err = %v, want one saying it is there 0 times", err)
	}
}

// startBinary runs the service binary on a free loopback port and returns its
// base URL once it answers.
func startBinary(t *testing.T, binary string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(binary)
	cmd.Env = []string{fmt.Sprintf("PORT=%d", port), "REGION=defect-test"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get(base + "/health/"); err == nil {
			resp.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 10s", binary)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fetch(t *testing.T, url string) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), time.Since(start)
}

func TestMonitorOpensAnIncidentPerRegionAndRevisionOnlyOnceTheMetricsAreVisible(t *testing.T) {
	t.Parallel()
	p := Policy{ErrorRatio: 0.05, Latency: 500 * time.Millisecond, Window: time.Second, MetricDelay: 3 * time.Second}
	m := newMonitor()
	m.setRevision("europe-west1", "old", "hello-00001")
	m.setRevision("europe-west1", "new", "hello-00002")
	for i := 0; i < 99; i++ {
		m.record("RUN revisions-europe-west1 old 200 1 /")
	}
	m.record("RUN revisions-europe-west1 new 500 0 /")
	m.record("RUN revisions-europe-west1 new 200 0 /health/") // a health check: not counted
	m.record("RUN revisions-us-east1 old 200 3 /")
	m.record("not a log line")
	now := time.Now()
	for _, tt := range []struct {
		region string
		at     time.Time
		want   string
	}{
		{"europe-west1", now, ""}, // not visible yet
		{"europe-west1", now.Add(3500 * time.Millisecond), "hello-00002 in europe-west1 answered 100 % of 1 requests with 5xx"},
		{"europe-west1", now.Add(5 * time.Second), ""}, // out of the window
		{"us-east1", now.Add(3500 * time.Millisecond), ""},
	} {
		if got := m.incident(tt.region, tt.at, p); !strings.HasPrefix(got, tt.want) || (tt.want == "") != (got == "") {
			t.Errorf("incident(%s, now+%s) = %q, want %q", tt.region, tt.at.Sub(now), got, tt.want)
		}
	}

	m = newMonitor()
	m.setRevision("europe-west1", "new", "hello-00002")
	m.record("RUN revisions-europe-west1 new 200 1200 /")
	if got := m.incident("europe-west1", time.Now().Add(3500*time.Millisecond), p); !strings.Contains(got, "p99 latency 1.2s") {
		t.Errorf("after a 1.2 s answer, incident = %q, want the p99 latency over the threshold", got)
	}
	if got := m.servedBy("hello-00002"); len(got) != 1 || got["europe-west1"] != 1200*time.Millisecond {
		t.Errorf("servedBy(hello-00002) = %v, want europe-west1 for 1.2s", got)
	}

	// The canary route reaches the same revision, and Cloud Run counts its
	// requests like any other; a request that found no revision is not one.
	m = newMonitor()
	m.setRevision("us-east1", "new", "hello-00002")
	m.record("RUN canary-us-east1 new 500 2 /")
	m.record("RUN canary-us-east1 <NOSRV> 503 0 /")
	m.record("RUN no-canary <NOSRV> 503 0 /")
	if got := m.incident("us-east1", time.Now().Add(3500*time.Millisecond), p); !strings.HasPrefix(got, "hello-00002 in us-east1 answered 100 % of 1 requests with 5xx") {
		t.Errorf("after a 500 on the canary route, incident = %q, want the new revision's 5xx share over 1 request", got)
	}
}

func TestMissedReleaseNamesEachGoalMissed(t *testing.T) {
	t.Parallel()
	var bad, good, quietBad, contrast, allAtOnce, trickleBad Release
	for _, r := range Releases() {
		switch r.ID {
		case "release-bad-500-all-at-once":
			allAtOnce = r
		case "release-trickle-bad-slow":
			trickleBad = r
		case "release-bad-500":
			bad = r
		case "release-good":
			good = r
		case "release-quiet-bad-500":
			quietBad = r
		case "release-quiet-bad-500-no-synthetic":
			contrast = r
		}
	}
	for _, tt := range []struct {
		name string
		row  ReleaseRow
		want string
	}{
		{"bad, contained", ReleaseRow{Release: bad, Canary: "a", Detected: true, RolledBack: true, Sent: 1000, Failed: 10, Served: map[string]time.Duration{"a": time.Second}}, ""},
		{"bad, 1.1 % failed", ReleaseRow{Release: bad, Canary: "a", Detected: true, RolledBack: true, Sent: 1000, Failed: 11}, "11 of 1000 failed, more than 1 %"},
		{"bad, not detected", ReleaseRow{Release: bad, Canary: "a", Sent: 1000}, "not detected and rolled back"},
		{"bad, another region served it", ReleaseRow{Release: bad, Canary: "a", Detected: true, RolledBack: true, Sent: 1000, Served: map[string]time.Duration{"b": time.Second}}, "b served it"},
		{"good", ReleaseRow{Release: good, Sent: 1000, Everywhere: true}, ""},
		{"good, one failed", ReleaseRow{Release: good, Sent: 1000, Failed: 1, Everywhere: true}, "1 failed"},
		{"good, rolled back", ReleaseRow{Release: good, Sent: 1000, Detected: true, Why: "noise", Everywhere: true}, "rolled back: noise"},
		{"good, not everywhere", ReleaseRow{Release: good, Sent: 1000}, "not every region ended on it"},
		{"bad, another region gave it traffic", ReleaseRow{Release: bad, Canary: "a", Detected: true, RolledBack: true, Sent: 1000, Reached: map[string]int{"a": 25, "b": 2}}, "b gave it 2 % of its traffic"},
		{"bad on a quiet service, contained", ReleaseRow{Release: quietBad, Canary: "a", Detected: true, RolledBack: true, Reached: map[string]int{"a": 2}}, ""},
		{"bad on a quiet service, not detected", ReleaseRow{Release: quietBad, Canary: "a", Reached: map[string]int{"a": 100, "b": 100}}, "b gave it 100 % of its traffic; not detected and rolled back"},
		{"the quiet contrast has no goal", ReleaseRow{Release: contrast, Canary: "a", Reached: map[string]int{"a": 100, "b": 100}}, ""},
		{"all at once, paged at once", ReleaseRow{Release: allAtOnce, Traffic: 2 * time.Second, Burn: Burn{Paged: true, Page: 3 * time.Second}}, ""},
		{"all at once, paged late", ReleaseRow{Release: allAtOnce, Traffic: 2 * time.Second, Burn: Burn{Paged: true, Page: 8 * time.Second}}, "paged 6.00 s after its first traffic, later than 5s"},
		{"all at once, no page", ReleaseRow{Release: allAtOnce, Traffic: 2 * time.Second}, "no page"},
		{"bad on a trickle, 2 % failed", ReleaseRow{Release: trickleBad, Canary: "a", Detected: true, RolledBack: true, Sent: 100, Failed: 2}, "2 of 100 failed, more than 1 %"},
	} {
		if got := MissedRelease(tt.row); got != tt.want {
			t.Errorf("%s: MissedRelease = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestAFaultThatWouldPageMissesItsGoal: with retries on, a fault whose goal is
// zero misses it by losing a request or by paging someone.
func TestAFaultThatWouldPageMissesItsGoal(t *testing.T) {
	t.Parallel()
	zero := Matrix()[0]
	for _, tt := range []struct {
		name string
		row  Row
		want int
	}{
		{"none lost, no page", Row{Fault: zero, Retries: true}, 0},
		{"one lost", Row{Fault: zero, Retries: true, Failed: 1}, 1},
		{"none lost, a page", Row{Fault: zero, Retries: true, Burn: Burn{Paged: true}}, 1},
		{"a page with retries off", Row{Fault: zero, Burn: Burn{Paged: true}}, 0},
	} {
		if got := len(Failed([]Row{tt.row})); got != tt.want {
			t.Errorf("%s: Failed returns %d rows, want %d", tt.name, got, tt.want)
		}
	}
}
