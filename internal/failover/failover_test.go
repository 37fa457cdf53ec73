package failover

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFailoverLosesNoRequest is the 2020 tutorial's part 3, automated: when the
// nearest region goes down, the next nearest answers, and no request fails.
func TestFailoverLosesNoRequest(t *testing.T) {
	dir, binary := buildServer(t)

	regions := DefaultRegions()
	var out bytes.Buffer
	rep, err := Run(context.Background(), Options{
		Binary:        binary,
		Regions:       regions,
		ShutdownDelay: 2 * time.Second,
		Before:        2 * time.Second,
		After:         2 * time.Second,
		Rate:          200,
		Out:           &out,
	}, dir)
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("failover.Run: %v", err)
	}

	if rep.Probe.Errors != 0 {
		t.Errorf("%d requests failed during the failover, want 0: %+v", rep.Probe.Errors, rep.Probe.ErrorCounts)
	}
	if rep.PrimaryExit != nil {
		t.Errorf("the primary exited with %v, want status 0; its logs:\n%s", rep.PrimaryExit, rep.Logs[regions[0]])
	}
	if n := rep.Probe.Count(regions[0]); n == 0 {
		t.Errorf("the primary %s never answered before it went down", regions[0])
	}
	if n := rep.Probe.Count(regions[1]); n == 0 {
		t.Errorf("the next region %s never answered after the primary went down", regions[1])
	}
	if n := rep.Probe.Count(regions[2]); n != 0 {
		t.Errorf("the second backup %s answered %d times; only the first backup should take over", regions[2], n)
	}
	// By the end only the next region answers.
	last := rep.Windows[len(rep.Windows)-2] // the final window may be a fraction of a second
	if len(last.Regions) != 1 || last.Regions[regions[1]] == 0 {
		t.Errorf("the last full second saw %v, want only %s", last.Regions, regions[1])
	}
	if !strings.Contains(rep.Logs[regions[0]], `"message":"stopped"`) {
		t.Errorf("the primary's logs lack the clean stop:\n%s", rep.Logs[regions[0]])
	}
}

// TestFailoverWithoutDelayLosesRequests is the contrast: without SHUTDOWN_DELAY the
// primary stops listening before the load balancer's health check has noticed,
// and requests fail. It shows that the delay, not luck, keeps the count at zero.
func TestFailoverWithoutDelayLosesRequests(t *testing.T) {
	dir, binary := buildServer(t)
	var out bytes.Buffer
	rep, err := Run(context.Background(), Options{
		Binary:  binary,
		Regions: DefaultRegions(),
		Before:  time.Second,
		After:   time.Second,
		Rate:    200,
		Out:     &out,
	}, dir)
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("failover.Run: %v", err)
	}
	if rep.Probe.Errors == 0 {
		t.Errorf("no request failed without SHUTDOWN_DELAY; the test with the delay proves nothing if this passes too")
	}
}

// buildServer builds the hello server into a temporary directory, which it also
// returns. Without haproxy the test cannot run: on CI that is a failure, elsewhere
// a skip that says what to install.
func buildServer(t *testing.T) (dir, binary string) {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("haproxy is not installed; .ci/run installs it")
		}
		t.Skip("haproxy is not installed (apt-get install haproxy); this failover test did not run")
	}
	dir = t.TempDir()
	binary = filepath.Join(dir, "hello")
	if out, err := exec.Command("go", "build", "-o", binary, "../..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir, binary
}
