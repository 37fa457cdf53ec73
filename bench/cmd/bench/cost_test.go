package main

import (
	"strings"
	"testing"
	"time"
)

// The cost table reads the deploy's limits, regions and minimum instances, and
// prices a lone request at 100 ms of the instance plus the fee.
func TestCostFollowsTheDeployAndThePrices(t *testing.T) {
	deployDir = "../../../deploy"
	d, err := readDeployment(deployDir)
	if err != nil {
		t.Fatal(err)
	}
	if d.vCPU != 1 || d.memGiB != 0.25 || len(d.regions) != 4 || d.minInstances != 1 {
		t.Errorf("readDeployment = %+v, want 1 vCPU, 0.25 GiB, 4 regions, 1 minimum instance (deploy/'s defaults)", d)
	}
	var b strings.Builder
	writeCost(&b, 20*time.Microsecond, 30*time.Millisecond)
	out := b.String()
	for _, want := range []string{
		// 0.1 s × (1 × 0.000024 + 0.25 × 0.0000025) + 0.40 / 1e6, a million times.
		"| quiet: 1 request a minute (each request alone: billed 100 ms) | 4.32e+04 | 4320 s | $2.86 |",
		// 2.592e6 s × (0.0000025 + 0.25 × 0.0000025) per idle instance, 4 of them.
		"$8.10 a month each while idle, **$32.40 a month**",
		// 2.592e6 s × (0.000018 + 0.25 × 0.000002).
		"costs $47.95 a month",
		"is billed 100ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the cost section lacks %q:\n%s", want, out)
		}
	}
}
