package main

// What a request costs on Cloud Run, from this run's measurements and Google's
// published prices. The prices are here and nowhere else.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// prices are Cloud Run's Tier 1 prices (every default region is Tier 1), from
// https://cloud.google.com/run/pricing as read on 2026-12-06 (the page shows no
// date of its own; a copy of 2025-08-19 and one of 2026-09-21 give the same).
var prices = struct {
	source, read string
	// Request-based billing: CPU and memory while an instance serves a request
	// (or starts, or shuts down), rounded up to 100 ms, and a fee per request.
	activeVCPUSecond, activeGiBSecond, perMillionRequests float64
	// Minimum instances while they serve nothing, request-based billing.
	idleVCPUSecond, idleGiBSecond float64
	// Instance-based billing: the instance's whole life, no request fee.
	instanceVCPUSecond, instanceGiBSecond float64
	// Free tier a month, per billing account, request-based billing.
	freeVCPUSeconds, freeGiBSeconds, freeRequests float64
	rounding                                      time.Duration
}{
	source: "https://cloud.google.com/run/pricing", read: "2026-12-06",
	activeVCPUSecond: 0.000024, activeGiBSecond: 0.0000025, perMillionRequests: 0.40,
	idleVCPUSecond: 0.0000025, idleGiBSecond: 0.0000025,
	instanceVCPUSecond: 0.000018, instanceGiBSecond: 0.000002,
	freeVCPUSeconds: 180_000, freeGiBSeconds: 360_000, freeRequests: 2_000_000,
	rounding: 100 * time.Millisecond,
}

// month is the month the table prices: 30 days.
const month = 30 * 24 * time.Hour

// deployDir is deploy/, from the directory make bench runs in.
var deployDir = "../deploy"

// deployment is what the cost depends on in deploy/: the instance's limits
// (service.yaml) and the regions and minimum instances (Terraform's defaults).
type deployment struct {
	vCPU, memGiB float64
	regions      []string
	minInstances int
}

// readDeployment reads the deployment from ../deploy, so that the table follows
// the deploy when it changes.
func readDeployment(dir string) (deployment, error) {
	var d deployment
	svc, err := os.ReadFile(filepath.Join(dir, "service.yaml"))
	if err != nil {
		return d, err
	}
	cpu := regexp.MustCompile(`(?m)^\s+cpu: "?([0-9.]+)"?`).FindSubmatch(svc)
	mem := regexp.MustCompile(`(?m)^\s+memory: ([0-9]+)Mi`).FindSubmatch(svc)
	if cpu == nil || mem == nil {
		return d, fmt.Errorf("deploy/service.yaml: no cpu or memory (Mi) limit found")
	}
	d.vCPU, _ = strconv.ParseFloat(string(cpu[1]), 64)
	mi, _ := strconv.Atoi(string(mem[1]))
	d.memGiB = float64(mi) / 1024
	vars, err := os.ReadFile(filepath.Join(dir, "terraform", "variables.tf"))
	if err != nil {
		return d, err
	}
	regions := regexp.MustCompile(`(?s)variable "regions" \{.*?default\s*=\s*\[([^\]]*)\]`).FindSubmatch(vars)
	minInst := regexp.MustCompile(`(?s)variable "min_instances" \{.*?default\s*=\s*([0-9]+)`).FindSubmatch(vars)
	if regions == nil || minInst == nil {
		return d, fmt.Errorf("deploy/terraform/variables.tf: no default for regions or min_instances found")
	}
	for _, r := range strings.Split(string(regions[1]), ",") {
		d.regions = append(d.regions, strings.Trim(strings.TrimSpace(r), `"`))
	}
	d.minInstances, _ = strconv.Atoi(string(minInst[1]))
	return d, nil
}

// load is a traffic profile for one region's service.
type load struct {
	name        string
	perSecond   float64
	billedEach  time.Duration // the instance time each request is billed for
	explanation string
}

// writeCost writes the cost section from hello's CPU per request and the
// Cloud Run-shaped start-up.
func writeCost(b *strings.Builder, cpuPerReq, start time.Duration) {
	fmt.Fprintf(b, "\n## What it costs\n\n")
	d, err := readDeployment(deployDir)
	if err != nil {
		fmt.Fprintf(b, "Not computed: %v.\n", err)
		return
	}
	p := prices
	perSecActive := d.vCPU*p.activeVCPUSecond + d.memGiB*p.activeGiBSecond
	perSecIdle := d.vCPU*p.idleVCPUSecond + d.memGiB*p.idleGiBSecond
	perSecInstance := d.vCPU*p.instanceVCPUSecond + d.memGiB*p.instanceGiBSecond
	fee := p.perMillionRequests / 1e6
	busyRate := float64(time.Second) / float64(cpuPerReq)

	fmt.Fprintf(b, "Cloud Run's Tier 1 prices (all %d default regions are Tier 1), from %s, read on %s: request-based billing $%g per vCPU-second and $%g per GiB-second while an instance serves, rounded up to %s, plus $%.2f per million requests; idle minimum instances $%g per vCPU-second and $%g per GiB-second; instance-based billing $%g and $%g for the instance's whole life, no request fee. Free tier a month (request-based): %.0f vCPU-seconds, %.0f GiB-seconds, %.0f million requests. ",
		len(d.regions), p.source, p.read, p.activeVCPUSecond, p.activeGiBSecond, p.rounding, p.perMillionRequests,
		p.idleVCPUSecond, p.idleGiBSecond, p.instanceVCPUSecond, p.instanceGiBSecond, p.freeVCPUSeconds, p.freeGiBSeconds, p.freeRequests/1e6)
	fmt.Fprintf(b, "The instance is deploy/service.yaml's (%g vCPU, %.0f MiB); a month is 30 days. Measured here: %s of CPU per `GET /` (the table above), so one busy instance serves at most about %.0f requests a second.\n\n",
		d.vCPU, d.memGiB*1024, us(cpuPerReq), busyRate)

	loads := []load{
		{"quiet: 1 request a minute", 1.0 / 60, p.rounding, "each request alone: billed 100 ms"},
		{"trickle: 1 request a second", 1, p.rounding, "each request alone: billed 100 ms"},
		{fmt.Sprintf("busy: one instance's CPU full, %.0f requests a second", busyRate), busyRate, cpuPerReq, "requests overlap: billed the CPU time they use"},
	}
	fmt.Fprintf(b, "| one region's service | requests a month | billed instance time a month | $ per million requests | $ a month, before the free tier | $ a month, after it |\n|---|---:|---:|---:|---:|---:|\n")
	for _, l := range loads {
		n := l.perSecond * month.Seconds()
		active := n * l.billedEach.Seconds()
		if active > month.Seconds() {
			active = month.Seconds()
		}
		cost := active*perSecActive + n*fee
		afterFree := max(0, active*d.vCPU-p.freeVCPUSeconds)*p.activeVCPUSecond +
			max(0, active*d.memGiB-p.freeGiBSeconds)*p.activeGiBSecond + max(0, n-p.freeRequests)*fee
		fmt.Fprintf(b, "| %s (%s) | %.3g | %.0f s | $%.2f | $%.2f | $%.2f |\n", l.name, l.explanation, n, active, cost/n*1e6, cost, afterFree)
	}
	idle := perSecIdle * month.Seconds()
	fmt.Fprintf(b, "\n- **Minimum instances** (`min_instances` = %d in each of %d regions, %s): $%.2f a month each while idle, **$%.2f a month** for the deployment, whatever the traffic; the free tier does not cover idle time.\n",
		d.minInstances, len(d.regions), strings.Join(d.regions, ", "), idle, idle*float64(d.minInstances*len(d.regions)))
	inst := perSecInstance * month.Seconds()
	// Request-based: idle price plus, for requests that come alone, 100 ms of
	// active price and the fee each; instance-based: the flat price.
	aloneEach := p.rounding.Seconds()*(perSecActive-perSecIdle) + fee
	fmt.Fprintf(b, "- **Instance-based billing** costs $%.2f a month for an instance that never stops. For one region with one instance, it is cheaper than request-based billing above %.1f requests a second when requests come alone (each billed 100 ms and the fee), and above %.0f requests a second when they overlap (the request fee alone is then more than the difference): busy services should switch (`run.googleapis.com/cpu-throttling: \"false\"` in deploy/service.yaml).\n",
		inst, (inst-idle)/month.Seconds()/aloneEach, (inst-idle)/month.Seconds()/fee)
	startBilled := (start + p.rounding - 1) / p.rounding * p.rounding
	fmt.Fprintf(b, "- **A cold start** (%s, the p50 of the image under runc above) is billed %s: $%.7f. Startup CPU boost would bill a second vCPU for the start and the 10 s after it, up to $%.5f a start, for the speed-up the 2-CPU rows show.\n",
		ms(start), startBilled, startBilled.Seconds()*perSecActive, (startBilled.Seconds()+10)*d.vCPU*p.activeVCPUSecond)
}
