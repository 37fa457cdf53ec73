package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/example/hello/internal/probe"
)

// The release part of the harness reproduces deploy/terraform's release pipeline
// (Cloud Deploy with its automation, and the Cloud Monitoring alert policies its
// analysis reads) on the harness's regions, with the real binary, and releases a
// correct version and versions with real defects through it, and all at once as
// `terraform apply` used to.
//
// Two layers of HAProxy stand in for Google's two. Clients near each region have a
// frontend of their own, whose backend sends every request to that region while it
// is up and to the others, in order, when it is not: the global load balancer, with
// the fault matrix's health checks, ejection and retries. Each region has a
// frontend of its own too, standing in for Cloud Run's: it splits the region's
// requests between the old and the new revision by weight, as a traffic split
// does, and logs every request, which is what Cloud Run's request metrics count.

// Policy is the release pipeline's policy: the steps, thresholds and durations
// deploy/terraform sets (a test in deploy/ checks them against its variables'
// defaults), and the figures Google documents for what it does not set.
type Policy struct {
	// Percentages are the canary steps of the new revision's traffic in each
	// region, before 100 %.
	Percentages []int
	// Analysis is how long the analysis watches each step before the rollout
	// advances; Poll is how often it reads the alert policies.
	Analysis, Poll time.Duration
	// ErrorRatio and Latency are the alert policies' thresholds: a revision
	// whose share of 5xx answers, or whose 99th percentile latency, over Window
	// exceeds them opens an incident. Latency is also the latency a client
	// counts as failed.
	ErrorRatio float64
	Latency    time.Duration
	Window     time.Duration
	// MetricDelay is how late Cloud Run's request metrics become visible to an
	// alert policy.
	MetricDelay time.Duration
	// Bake is how long the canary region serves the release at 100 % before it
	// is promoted to the other regions.
	Bake time.Duration
	// Job is how long a deploy or rollback job takes.
	Job time.Duration
	// SyntheticRate is the synthetic traffic's requests a second to the new
	// revision of each region of a stage, sent by the analysis's custom check
	// through the load balancer's canary route; 0: none. The check starts with
	// each analysis and again every SyntheticEvery, each run sending for
	// SyntheticRun with at most SyntheticInFlight requests in flight, and fails
	// the analysis when the probe's own verdict does (more than ErrorRatio
	// failed, a p99 over Latency, or a region silent).
	SyntheticRate                float64
	SyntheticEvery, SyntheticRun time.Duration
	SyntheticInFlight            int
}

// ReleaseTimeScale divides every duration of the release policy in the harness:
// a real 10-minute analysis takes 10 seconds. Latencies are not scaled.
const ReleaseTimeScale = 60

// ReleasePolicy returns the policy at its real scale.
func ReleasePolicy() Policy {
	return Policy{
		// deploy/terraform/variables.tf: canary_percentages, analysis_minutes,
		// alert_error_ratio, alert_latency_ms, alert_window_seconds, bake_minutes.
		Percentages: []int{2, 25},
		Analysis:    10 * time.Minute,
		ErrorRatio:  0.05,
		Latency:     500 * time.Millisecond,
		Window:      time.Minute,
		Bake:        30 * time.Minute,
		// Cloud Run's request metrics are sampled every 60 s and may take up to
		// 180 s more to become visible (Google Cloud metrics list, run.googleapis.com).
		MetricDelay: 3 * time.Minute,
		// Not documented by Google: how often an analysis reads the alert
		// policies, and how long a Cloud Deploy job takes. Estimates.
		Poll: time.Minute,
		Job:  time.Minute,
		// synthetic_requests_per_second; a custom check runs every 5 minutes,
		// Cloud Deploy's minimum and default, and each run sends for 4 of them
		// (release.tf). Google does not say whether the first run starts with
		// the analysis or a period later: here it starts with it.
		SyntheticRate:     1,
		SyntheticEvery:    5 * time.Minute,
		SyntheticRun:      4 * time.Minute,
		SyntheticInFlight: 8,
	}
}

// String says the policy in one line.
func (p Policy) String() string {
	return fmt.Sprintf("steps %v %% then 100 %%, analysis %s per step (polls every %s), alerts at > %.0f %% 5xx or p99 > %s over %s seen %s late, bake %s, jobs %s, synthetic traffic %g/s a region for %s every %s",
		p.Percentages, p.Analysis, p.Poll, 100*p.ErrorRatio, p.Latency, p.Window, p.MetricDelay, p.Bake, p.Job, p.SyntheticRate, p.SyntheticRun, p.SyntheticEvery)
}

// Scaled returns p with every duration but Latency divided by n, and the
// synthetic traffic's rate and requests in flight multiplied by n, so that each
// alert window sees as many requests as it would at full scale, and a slow
// revision holds as many of them in flight.
func (p Policy) Scaled(n int) Policy {
	d := time.Duration(n)
	p.Percentages = slices.Clone(p.Percentages)
	p.Analysis, p.Poll, p.Window = p.Analysis/d, p.Poll/d, p.Window/d
	p.MetricDelay, p.Bake, p.Job = p.MetricDelay/d, p.Bake/d, p.Job/d
	p.SyntheticRate *= float64(n)
	p.SyntheticInFlight *= n
	p.SyntheticEvery, p.SyntheticRun = p.SyntheticEvery/d, p.SyntheticRun/d
	return p
}

// Release is one row of the release part: a version, and how it is delivered.
type Release struct {
	// ID names the row on the command line.
	ID string
	// Version says what is released; Delivery how.
	Version, Delivery string
	// Defect is the defect's name, or empty for a correct version.
	Defect string
	// Progressive says the row goes through the pipeline; otherwise every
	// region gets the version at once, as one terraform apply did.
	Progressive bool
	// Load is the users' traffic during the row: Loaded (the run's rate),
	// Trickle (one request a second at full scale) or Quiet (none).
	Load string
	// NoSynthetic takes the synthetic traffic out of the pipeline: the
	// contrast that shows what an analysis of a quiet service sees without it.
	NoSynthetic bool
}

// The loads of the release rows.
const (
	Loaded  = "loaded"
	Trickle = "trickle"
	Quiet   = "quiet"
)

// Releases returns every release row, in the order they run: under load, each
// progressive bad release before the same release all at once, which holds the bad
// version as long as the pipeline took to detect it and roll it back (its goal: the
// users' alerts page); then the same releases on a quiet service and on a trickle,
// and the quiet contrast without synthetic traffic.
func Releases() []Release {
	const bad500, badSlow = "bad: GET / answers 500", "bad: GET / answers 2 s late"
	return []Release{
		{ID: "release-bad-500", Version: bad500, Delivery: "progressive", Defect: "500", Progressive: true, Load: Loaded},
		{ID: "release-bad-500-all-at-once", Version: bad500, Delivery: "all at once", Defect: "500", Load: Loaded},
		{ID: "release-bad-slow", Version: badSlow, Delivery: "progressive", Defect: "slow", Progressive: true, Load: Loaded},
		{ID: "release-bad-slow-all-at-once", Version: badSlow, Delivery: "all at once", Defect: "slow", Load: Loaded},
		{ID: "release-good", Version: "good", Delivery: "progressive", Progressive: true, Load: Loaded},
		{ID: "release-quiet-bad-500", Version: bad500, Delivery: "progressive", Defect: "500", Progressive: true, Load: Quiet},
		{ID: "release-quiet-bad-500-no-synthetic", Version: bad500, Delivery: "progressive, no synthetic traffic", Defect: "500", Progressive: true, Load: Quiet, NoSynthetic: true},
		{ID: "release-quiet-bad-slow", Version: badSlow, Delivery: "progressive", Defect: "slow", Progressive: true, Load: Quiet},
		{ID: "release-quiet-good", Version: "good", Delivery: "progressive", Progressive: true, Load: Quiet},
		{ID: "release-trickle-bad-500", Version: bad500, Delivery: "progressive", Defect: "500", Progressive: true, Load: Trickle},
		{ID: "release-trickle-bad-slow", Version: badSlow, Delivery: "progressive", Defect: "slow", Progressive: true, Load: Trickle},
		{ID: "release-trickle-good", Version: "good", Delivery: "progressive", Progressive: true, Load: Trickle},
	}
}

// ReleaseIDs returns the release rows' IDs.
func ReleaseIDs() []string {
	var ids []string
	for _, r := range Releases() {
		ids = append(ids, r.ID)
	}
	return ids
}

// A defect is a real bug in the service's source, put in at build time with
// go build -overlay: file with one piece of text replaced, and files added. A
// binary built with it starts and passes /health/; only GET / is wrong.
type defect struct {
	name, file string
	old, new   string
	add        map[string]string
}

var defects = map[string]defect{
	// The answer's status changed: what a wrong constant in a handler does.
	"500": {name: "500", file: "handlers.go",
		old: "answer := newJSONResponse(http.StatusOK, rootResponse{",
		new: "answer := newJSONResponse(http.StatusInternalServerError, rootResponse{"},
	// A call that blocks for two seconds before every answer: what a slow
	// dependency added to the request path does.
	"slow": {name: "slow", file: "handlers.go",
		old: "\t\tanswer.write(w)\n",
		new: "\t\tdefectDelay()\n\t\tanswer.write(w)\n",
		add: map[string]string{"defect_delay.go": "package main\n\nimport \"time\"\n\n// defectDelay is the slow release's defect.\nfunc defectDelay() { time.Sleep(2 * time.Second) }\n"}},
}

// buildDefect builds the service in source with defect d into dir and returns
// the binary's path. It fails when the defect's text is not in the source
// exactly once, so that a change to the source cannot quietly make the defect
// build a correct service.
func buildDefect(ctx context.Context, source, dir string, d defect) (string, error) {
	source, err := filepath.Abs(source)
	if err != nil {
		return "", err
	}
	orig, err := os.ReadFile(filepath.Join(source, d.file))
	if err != nil {
		return "", fmt.Errorf("the %s defect: %w", d.name, err)
	}
	if n := strings.Count(string(orig), d.old); n != 1 {
		return "", fmt.Errorf("the %s defect: %s has %q %d times, want once; update the defect in internal/faults/release.go", d.name, d.file, d.old, n)
	}
	overlay := filepath.Join(dir, "defect-"+d.name)
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		return "", err
	}
	files := map[string]string{d.file: strings.Replace(string(orig), d.old, d.new, 1)}
	for name, text := range d.add {
		files[name] = text
	}
	replace := map[string]string{}
	for name, text := range files {
		path := filepath.Join(overlay, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return "", err
		}
		replace[filepath.Join(source, name)] = path
	}
	spec, err := json.Marshal(map[string]any{"Replace": replace})
	if err != nil {
		return "", err
	}
	specPath := filepath.Join(overlay, "overlay.json")
	if err := os.WriteFile(specPath, spec, 0o644); err != nil {
		return "", err
	}
	binary := filepath.Join(dir, "hello-"+d.name)
	cmd := exec.CommandContext(ctx, "go", "build", "-overlay", specPath, "-o", binary, ".")
	cmd.Dir = source
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the %s defect: %v\n%s", d.name, err, out)
	}
	return binary, nil
}

// nextPort is the port of a release's new revision, beside the old on regionPort.
const nextPort = regionPort + 1

// CanaryHeader is the header that asks the load balancer's canary route for
// a region's new revision (deploy/terraform: a route rule per region, to a
// serverless NEG on the revision Cloud Deploy tags during a canary).
const CanaryHeader = "X-Hello-Canary"

// releaseConfig returns the two-layer configuration of the release rows:
// clients-REGION frontends on near[i], run-REGION frontends on run[i], and the
// canary route on canary.
func releaseConfig(near, run []int, canary int, socket string, regions []*region) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 8000
    stats socket %s mode 600 level admin
    log stdout format raw local0
`+haproxyDefaults+`    option http-server-close
    http-reuse never
    option httpchk
    http-check send meth GET uri /health/
    http-check expect status 200
`, socket)
	for i, r := range regions {
		// The global load balancer, for the clients near r: r first, then the
		// others in order; as the fault matrix's, with retries on.
		fmt.Fprintf(&b, `
frontend clients-%s
    bind 127.0.0.1:%d
    default_backend lb-%s

backend lb-%s
    balance first
    default-server inter 250ms fastinter 250ms downinter 250ms fall 2 rise 2 observe layer7 error-limit 3 on-error mark-down maxconn 1000
    retries 1
    retry-on conn-failure empty-response response-timeout
    option redispatch 1
`, r.name, near[i], r.name, r.name)
		order := append([]int{i}, slices.DeleteFunc(slices.Collect(func(yield func(int) bool) {
			for j := range regions {
				if !yield(j) {
					return
				}
			}
		}), func(j int) bool { return j == i })...)
		for id, j := range order {
			fmt.Fprintf(&b, "    server %s 127.0.0.1:%d id %d check\n", regions[j].name, run[j], id+1)
		}
	}
	for i, r := range regions {
		// Cloud Run's front end in r: the traffic split between revisions
		// (weights are percentages), a request timeout of Cloud Run's order, no
		// ejection, and a log line for every request.
		fmt.Fprintf(&b, `
frontend run-%s
    bind 127.0.0.1:%d
    log global
    log-format "RUN %%b %%s %%ST %%Ta %%HP"
    default_backend revisions-%s

backend revisions-%s
    balance roundrobin
    timeout server 30s
    default-server inter 250ms fastinter 250ms downinter 250ms fall 2 rise 2
    server old %s:%d weight 100 check
    server new %s:%d weight 0 check
`, r.name, run[i], r.name, r.name, r.addr, regionPort, r.addr, nextPort)
	}
	// The canary route: a request that names a region in CanaryHeader goes to
	// that region's new revision alone, as a tagged revision's NEG sends it, and
	// is logged as Cloud Run counts it; without a new revision it fails (503).
	fmt.Fprintf(&b, `
frontend canary
    bind 127.0.0.1:%d
    log global
    log-format "RUN %%b %%s %%ST %%Ta %%HP"
    use_backend canary-%%[req.hdr(%s),lower] if { req.hdr(%s) -m found }
    default_backend no-canary

backend no-canary
`, canary, CanaryHeader, CanaryHeader)
	for _, r := range regions {
		fmt.Fprintf(&b, `
backend canary-%s
    timeout server 30s
    default-server inter 250ms fastinter 250ms downinter 250ms fall 2 rise 2
    server new %s:%d check
`, r.name, r.addr, nextPort)
	}
	return b.String()
}

// startReleaseHAProxy starts HAProxy with the release configuration, its
// request log going to mon. Its urls are the clients' frontends, in region
// order; canary is the canary route's.
func startReleaseHAProxy(ctx context.Context, dir string, regions []*region, mon *monitor) (*haproxy, error) {
	var near, run []int
	for range regions {
		for _, ports := range []*[]int{&near, &run} {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			*ports = append(*ports, p)
		}
	}
	canary, err := freePort()
	if err != nil {
		return nil, err
	}
	socket := filepath.Join(dir, "haproxy.sock")
	h, err := launchHAProxy(ctx, dir, releaseConfig(near, run, canary, socket, regions), socket, append(slices.Clone(near), canary), mon.record)
	if err != nil {
		return nil, err
	}
	h.canary, h.urls = h.urls[len(h.urls)-1], h.urls[:len(h.urls)-1]
	return h, nil
}

// served is one request a region's front end answered, as its log line says.
type served struct {
	at       time.Time
	region   string
	revision string
	status   int // -1 when the caller went away before an answer
	took     time.Duration
}

// monitor stands in for Cloud Monitoring: it keeps what each region's front
// end served and evaluates deploy/terraform's two alert policies on it, per
// region and revision, seeing only what would be visible: nothing newer than
// the metric delay.
type monitor struct {
	mu        sync.Mutex
	revisions map[string]string // "REGION/SERVER" → the revision it runs
	requests  []served
}

func newMonitor() *monitor { return &monitor{revisions: map[string]string{}} }

// setRevision records that server (old or new) of region runs revision.
func (m *monitor) setRevision(region, server, revision string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revisions[region+"/"+server] = revision
}

// servedBy returns, for each region whose front end sent requests to revision,
// how long it did: from the first to the last.
func (m *monitor) servedBy(revision string) map[string]time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	first, last := map[string]time.Time{}, map[string]time.Time{}
	for _, s := range m.requests {
		if s.revision != revision {
			continue
		}
		if _, ok := first[s.region]; !ok {
			first[s.region] = s.at.Add(-s.took)
		}
		last[s.region] = s.at
	}
	out := map[string]time.Duration{}
	for region, t := range first {
		out[region] = last[region].Sub(t)
	}
	return out
}

// record takes one of HAProxy's log lines: "RUN revisions-REGION SERVER STATUS
// TA PATH", or "RUN canary-REGION new ..." for the canary route, which reaches
// the same revision. Health checks are not requests Cloud Run counts, and a
// request that reached no server is not one the revision saw.
func (m *monitor) record(line string) {
	f := strings.Fields(line)
	if len(f) != 6 || f[5] == "/health/" || f[2] == "<NOSRV>" {
		return
	}
	region, ok := strings.CutPrefix(f[1], "revisions-")
	if !ok {
		if region, ok = strings.CutPrefix(f[1], "canary-"); !ok {
			return
		}
	}
	status, err1 := strconv.Atoi(f[3])
	took, err2 := strconv.Atoi(f[4])
	if err1 != nil || err2 != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests = append(m.requests, served{at: time.Now(), region: region, revision: m.revisions[region+"/"+f[2]],
		status: status, took: time.Duration(took) * time.Millisecond})
}

// incident returns why one of the alert policies of region has an incident
// open at now, or "" if none has: over the window that ended a metric delay
// ago, a revision answered more than ErrorRatio of its requests with 5xx, or
// its 99th percentile latency was over Latency.
func (m *monitor) incident(region string, now time.Time, p Policy) string {
	to := now.Add(-p.MetricDelay)
	from := to.Add(-p.Window)
	m.mu.Lock()
	byRevision := map[string][]served{}
	for _, s := range m.requests {
		if s.region == region && !s.at.Before(from) && s.at.Before(to) {
			byRevision[s.revision] = append(byRevision[s.revision], s)
		}
	}
	m.mu.Unlock()
	for _, revision := range slices.Sorted(func(yield func(string) bool) {
		for k := range byRevision {
			if !yield(k) {
				return
			}
		}
	}) {
		reqs := byRevision[revision]
		errs := 0
		took := make([]time.Duration, len(reqs))
		for i, s := range reqs {
			if s.status >= 500 {
				errs++
			}
			took[i] = s.took
		}
		if ratio := float64(errs) / float64(len(reqs)); ratio > p.ErrorRatio {
			return fmt.Sprintf("%s in %s answered %.0f %% of %d requests with 5xx (threshold %.0f %%)", revision, region, 100*ratio, len(reqs), 100*p.ErrorRatio)
		}
		slices.Sort(took)
		if p99 := took[min(len(took)-1, len(took)*99/100)]; p99 > p.Latency {
			return fmt.Sprintf("%s in %s: p99 latency %s over %d requests (threshold %s)", revision, region, p99, len(reqs), p.Latency)
		}
	}
	return ""
}

// ReleaseRow is what one release did to the load.
type ReleaseRow struct {
	Release Release
	// Window is from the release's start to the end of its rollback (a bad
	// release) or of its last step (a good one); Sent and Failed count the
	// requests sent in it, Failures by kind. A request answered later than the
	// policy's latency threshold counts as failed.
	Window       time.Duration
	Sent, Failed int
	Failures     map[string]int
	// Detected says an analysis failed the rollout, Detect how long after the
	// new revision first took traffic, and Why what it saw. RolledBack says the
	// new revision's traffic went back to the old, Rollback how long after the
	// detection.
	Detected, RolledBack bool
	Detect, Rollback     time.Duration
	Why                  string
	// Served says, for each region whose front end sent requests to the new
	// revision (as Cloud Run's request metrics would count them), for how long:
	// from the first to the last.
	Served map[string]time.Duration
	// Everywhere says that at the end every region's answers came from the new
	// revision, and none failed.
	Everywhere bool
	// Canary is the region the pipeline releases to first.
	Canary string
	// Synthetic and SyntheticFailed count the synthetic traffic's requests to
	// the new revision, and those that failed: not users', and not in Sent;
	// SyntheticFailures counts the failures by kind.
	Synthetic, SyntheticFailed int
	SyntheticFailures          map[string]int
	// Reached is the highest share of its traffic, in percent, that each
	// region gave the new revision; a region that gave it none is absent.
	Reached map[string]int
	// Traffic is when the new revision first took users' traffic, since the
	// row's load began; Burn is what the objectives' burn-rate alerts would
	// have made of the users' requests.
	Traffic time.Duration
	Burn    Burn
}

// releaseResult is what the release did, in time since the row's load began.
type releaseResult struct {
	start, end, traffic  time.Duration // traffic: the new revision's first traffic
	detected, rolledBack time.Duration
	why                  string
}

// pipeline plays Cloud Deploy's part: the delivery pipeline's two stages (the
// canary region, then every other region at once), the canary steps in each,
// an analysis after each step, and the automation: advance when an analysis
// passes, promote after the bake time, roll back when an analysis fails.
type pipeline struct {
	h      *harness
	p      Policy
	began  time.Time
	weight map[string]int // the new revision's percentage in each region
	// reached is the highest percentage each region gave the new revision.
	reached map[string]int
	// mu guards the synthetic traffic's counts: its requests, those that
	// failed, and the failures by kind.
	mu                         sync.Mutex
	synthetic, syntheticFailed int
	syntheticKinds             map[string]int
}

// since returns the time since the row's load began.
func (pl *pipeline) since() time.Duration { return time.Since(pl.began) }

// say prints one step of the release.
func (pl *pipeline) say(format string, args ...any) {
	fmt.Fprintf(pl.h.o.Out, "· %s %s ", seconds(pl.since()), fmt.Sprintf(format, args...))
}

// deploy is a deploy job: after the job's time, a new revision runs binary in
// each region of stage, and each region's front end counts it ready.
func (pl *pipeline) deploy(stage []*region, binary, revision string) error {
	if err := sleep(pl.h.ctx, pl.p.Job); err != nil {
		return err
	}
	errs := make([]error, len(stage))
	var wg sync.WaitGroup
	for i, r := range stage {
		wg.Go(func() {
			r.next = &instance{}
			pl.h.mon.setRevision(r.name, "new", revision)
			errs[i] = r.next.start(pl.h.ctx, r, binary, nextPort, []string{"K_REVISION=" + revision, "SHUTDOWN_DELAY=0s"})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Ready as Cloud Run counts a revision ready: behind its region's split and
	// behind the canary route, which a tagged revision's URL reaches once it is.
	for _, r := range stage {
		for _, backend := range []string{"revisions-", "canary-"} {
			if err := pl.h.waitUp(backend+r.name, "new"); err != nil {
				return err
			}
		}
	}
	pl.say("%s deployed in %s", revision, names(stage))
	return nil
}

// shift gives the new revision pct % of each region's traffic in stage, raising
// one weight before lowering the other so that no region is ever without one.
func (pl *pipeline) shift(stage []*region, pct int) error {
	for _, r := range stage {
		backend := "revisions-" + r.name
		steps := [][2]any{{"new", pct}, {"old", 100 - pct}}
		if pct < pl.weight[r.name] {
			slices.Reverse(steps)
		}
		for _, s := range steps {
			if err := pl.h.lb.setWeight(backend, s[0].(string), s[1].(int)); err != nil {
				return err
			}
		}
		pl.weight[r.name] = pct
		pl.reached[r.name] = max(pl.reached[r.name], pct)
	}
	return nil
}

// analyse watches the regions of watched for the analysis's duration, reading
// their alert policies every Poll, while the custom check sends synthetic
// traffic to the new revision in each region of probed, and returns why it
// failed, or "" if it passed. As Cloud Deploy's does, it waits at the end for a
// check that is still running.
func (pl *pipeline) analyse(watched, probed []*region) (string, error) {
	end := time.Now().Add(pl.p.Analysis)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, below: deferred calls run last first
	ctx, cancel := context.WithCancel(pl.h.ctx)
	defer cancel()
	checked := make(chan string, 1) // why a check failed, once
	if pl.p.SyntheticRate > 0 {
		wg.Go(func() {
			if why := pl.syntheticChecks(ctx, probed, end); why != "" {
				checked <- why
			}
			close(checked)
		})
	} else {
		close(checked)
	}
	for {
		if err := sleep(pl.h.ctx, min(pl.p.Poll, time.Until(end))); err != nil {
			return "", err
		}
		for _, r := range watched {
			if why := pl.h.mon.incident(r.name, time.Now(), pl.p); why != "" {
				return why, nil
			}
		}
		select {
		case why, ok := <-checked:
			if ok {
				return why, nil
			}
		default:
		}
		if !time.Now().Before(end) {
			// Cloud Deploy waits for a check still running, and the alerts
			// still count while it does.
			if why := <-checked; why != "" {
				return why, nil
			}
			for _, r := range watched {
				if why := pl.h.mon.incident(r.name, time.Now(), pl.p); why != "" {
					return why, nil
				}
			}
			return "", nil
		}
	}
}

// syntheticChecks is the analysis's custom check: from the analysis's start
// until end, every SyntheticEvery, the project's probe sends SyntheticRate
// requests a second to each region of probed for SyntheticRun, through the
// canary route, with the release policy's thresholds as its verdict (the
// container's arguments in release.tf). It returns why a run failed, or "".
func (pl *pipeline) syntheticChecks(ctx context.Context, probed []*region, end time.Time) string {
	routes := make([]string, len(probed))
	for i, r := range probed {
		routes[i] = r.name
	}
	rate := pl.p.SyntheticRate * float64(len(probed))
	o := probe.Options{
		URL:         pl.h.lb.canary,
		Requests:    int(rate * pl.p.SyntheticRun.Seconds()),
		Concurrency: pl.p.SyntheticInFlight,
		Rate:        rate,
		Timeout:     probe.DefaultTimeout,
		RouteHeader: CanaryHeader,
		Routes:      routes,
	}
	want := probe.Expect{Regions: routes, EachRegion: true, MaxErrorRatio: pl.p.ErrorRatio, MaxP99: pl.p.Latency}
	for next := time.Now(); next.Before(end); next = next.Add(pl.p.SyntheticEvery) {
		if err := sleep(ctx, time.Until(next)); err != nil {
			return ""
		}
		res, err := probe.Run(ctx, o, time.Second, nil)
		pl.mu.Lock()
		pl.synthetic += res.Requests
		pl.syntheticFailed += res.Errors
		for _, e := range res.ErrorCounts {
			pl.syntheticKinds[e.Error] += e.Count
		}
		pl.mu.Unlock()
		if ctx.Err() != nil {
			return "" // the analysis ended first (an alert, or the run's end)
		}
		failures := want.Failures(res)
		if err != nil {
			failures = append(failures, err.Error())
		}
		if len(failures) > 0 {
			return "synthetic check: " + strings.Join(failures, "; ")
		}
	}
	return ""
}

// rollback is the repair rule's rollback: after a job's time, the old revision
// takes all of stage's traffic back.
func (pl *pipeline) rollback(stage []*region) error {
	if err := sleep(pl.h.ctx, pl.p.Job); err != nil {
		return err
	}
	return pl.shift(stage, 0)
}

// progressive releases binary as revision through the pipeline.
func (pl *pipeline) progressive(binary, revision string) (releaseResult, error) {
	res := releaseResult{start: pl.since(), traffic: -1}
	canary, rest := pl.h.regions[:1], pl.h.regions[1:]
	for i, stage := range [][]*region{canary, rest} {
		if i > 0 {
			pl.say("bake %s", seconds(pl.p.Bake))
			if err := sleep(pl.h.ctx, pl.p.Bake); err != nil {
				return res, err
			}
		}
		if err := pl.deploy(stage, binary, revision); err != nil {
			return res, err
		}
		// The second stage's analysis also reads the canary region's alerts,
		// which is how an alert there after the bake still stops the release.
		watched := stage
		if i > 0 {
			watched = append(slices.Clone(rest), canary...)
		}
		for _, pct := range append(slices.Clone(pl.p.Percentages), 100) {
			if err := pl.shift(stage, pct); err != nil {
				return res, err
			}
			if res.traffic < 0 {
				res.traffic = pl.since()
			}
			pl.say("%d %%", pct)
			if pct == 100 {
				// Cloud Deploy runs a canary's analysis after each of its
				// percentages, and its documentation says not in the stable
				// phase: the stage succeeds once 100 % is deployed.
				break
			}
			why, err := pl.analyse(watched, stage)
			if err != nil {
				return res, err
			}
			if why != "" {
				res.detected, res.why = pl.since(), why
				pl.say("analysis failed (%s); rollback", why)
				if err := pl.rollback(stage); err != nil {
					return res, err
				}
				res.rolledBack = pl.since()
				res.end = res.rolledBack
				pl.say("rolled back")
				return res, nil
			}
		}
	}
	res.end = pl.since()
	return res, nil
}

// allAtOnce gives binary as revision every region's traffic at once, holds it
// for hold, and puts the old revision back, as a person would.
func (pl *pipeline) allAtOnce(binary, revision string, hold time.Duration) (releaseResult, error) {
	res := releaseResult{start: pl.since()}
	if err := pl.deploy(pl.h.regions, binary, revision); err != nil {
		return res, err
	}
	if err := pl.shift(pl.h.regions, 100); err != nil {
		return res, err
	}
	res.traffic = pl.since()
	pl.say("100 %% everywhere; held %s", seconds(hold))
	if err := sleep(pl.h.ctx, hold); err != nil {
		return res, err
	}
	if err := pl.shift(pl.h.regions, 0); err != nil {
		return res, err
	}
	res.end = pl.since()
	pl.say("put back by hand")
	return res, nil
}

// waitUp waits until HAProxy counts server of backend up.
func (h *harness) waitUp(backend, server string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if up, err := h.lb.up(backend, server); err == nil && up {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("haproxy did not count %s/%s up within 10s; haproxy said:\n%s", backend, server, h.lb.output())
		}
		if err := sleep(h.ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitServingNear waits until the clients near every region are served by
// that region's old revision.
func (h *harness) waitServingNear() error {
	for i, r := range h.regions {
		if err := h.waitServedBy(h.lb.urls[i], r); err != nil {
			return err
		}
	}
	return nil
}

// releaseRow runs one release under load and measures it. hold is how long an
// all-at-once release is held. The monitor keeps what earlier rows served, as
// Cloud Monitoring would: an alert of an earlier row's revision still open
// fails this row's analysis.
func (h *harness) releaseRow(rel Release, binary string, hold time.Duration) (row ReleaseRow, err error) {
	if err := h.waitServingNear(); err != nil {
		return ReleaseRow{}, err
	}
	revision := "hello-00002-" + strings.TrimPrefix(rel.ID, "release-")
	fmt.Fprintf(h.o.Out, "%-28s %s ", rel.ID, rel.Version)

	began := time.Now()
	pl := &pipeline{h: h, p: h.policy, began: began, weight: map[string]int{}, reached: map[string]int{}, syntheticKinds: map[string]int{}}
	if rel.NoSynthetic {
		pl.p.SyntheticRate = 0
	}
	defer func() { err = errors.Join(err, h.resetRelease(pl)) }()
	loadCtx, stopLoad := context.WithCancel(h.ctx)
	done := make(chan []outcome, 1)
	rate := h.loadRate(rel.Load)
	if rate > 0 {
		go func() { done <- openLoop(loadCtx, h.lb.urls, rate, began) }()
	} else {
		done <- nil
	}
	res, err := pl.run(rel, binary, revision, hold)
	ended := time.Since(began)
	// The load ends here on every path, so that no request of this row is still
	// in flight when the next row or the clean-up begins.
	stopLoad()
	outcomes := <-done
	if err != nil {
		return ReleaseRow{}, err
	}
	fmt.Fprintln(h.o.Out, "· done")
	var regions []string
	for _, r := range h.regions {
		regions = append(regions, r.name)
	}
	row = measureRelease(outcomes, res, revision, h.policy.Latency, ended, h.o.After, regions)
	row.Release, row.Canary, row.Served = rel, h.regions[0].name, h.mon.servedBy(revision)
	pl.mu.Lock()
	row.Synthetic, row.SyntheticFailed, row.SyntheticFailures = pl.synthetic, pl.syntheticFailed, pl.syntheticKinds
	pl.mu.Unlock()
	row.Reached = pl.reached
	row.Traffic, row.Burn = res.traffic, burn(outcomes, float64(rate), h.slo, ended)
	if len(outcomes) == 0 {
		// No user asked anything: the new version is everywhere when the
		// pipeline gave it every region's traffic.
		row.Everywhere = true
		for _, r := range h.regions {
			if pl.weight[r.name] != 100 {
				row.Everywhere = false
			}
		}
	}
	return row, nil
}

// loadRate returns the users' requests a second for a row's load: the run's
// rate, one a second at full scale (ReleaseTimeScale in the harness's time), or
// none.
func (h *harness) loadRate(load string) int {
	switch load {
	case Trickle:
		return ReleaseTimeScale
	case Quiet:
		return 0
	}
	return h.o.Rate
}

// run waits Before, releases, and waits After: the part of a row under load.
func (pl *pipeline) run(rel Release, binary, revision string, hold time.Duration) (releaseResult, error) {
	if err := sleep(pl.h.ctx, pl.h.o.Before); err != nil {
		return releaseResult{}, err
	}
	var res releaseResult
	var err error
	if rel.Progressive {
		res, err = pl.progressive(binary, revision)
	} else {
		res, err = pl.allAtOnce(binary, revision, hold)
	}
	if err != nil {
		return res, err
	}
	return res, sleep(pl.h.ctx, pl.h.o.After)
}

// resetRelease puts every region's traffic back on the old revision and stops
// the new revision's instances, outside any measured window.
func (h *harness) resetRelease(pl *pipeline) error {
	err := pl.shift(h.regions, 0)
	for _, r := range h.regions {
		if r.next != nil {
			r.next.stop()
			r.next = nil
		}
	}
	return err
}

// measureRelease reduces a release row's outcomes to its figures. Times are
// since the load began; the last `after` of the row is its end state.
func measureRelease(outcomes []outcome, res releaseResult, revision string, late, ended, after time.Duration, regions []string) ReleaseRow {
	row := ReleaseRow{Failures: map[string]int{}, Window: res.end - res.start, Why: res.why}
	if res.detected > 0 {
		row.Detected, row.Detect = true, res.detected-res.traffic
	}
	if res.rolledBack > 0 {
		row.RolledBack, row.Rollback = true, res.rolledBack-res.detected
	}
	endNew, endAll := map[string]int{}, map[string]int{}
	for _, o := range outcomes {
		failure := o.failure
		if failure == "" && o.latency > late {
			failure = fmt.Sprintf("answered after %s", late)
		}
		if o.start >= res.start && o.start < res.end {
			row.Sent++
			if failure != "" {
				row.Failed++
				row.Failures[failure]++
			}
		}
		if o.start >= ended-after {
			region := regions[o.client]
			endAll[region]++
			if failure == "" && o.revision == revision && o.servedBy == region {
				endNew[region]++
			}
		}
	}
	row.Everywhere = true
	for _, r := range regions {
		if endAll[r] == 0 || endNew[r] != endAll[r] {
			row.Everywhere = false
		}
	}
	return row
}

// ReleaseGoal returns what a release row must show, or "" for the contrast: the
// quiet service without synthetic traffic.
func ReleaseGoal(r Release) string {
	switch {
	case !r.Progressive && r.Defect != "":
		return fmt.Sprintf("the users' alerts page within %s (5 minutes at full scale) of its first traffic", pageWithin())
	case !r.Progressive || r.NoSynthetic:
		return ""
	case r.Defect != "" && r.Load == Quiet:
		return "detected and rolled back; no region but the canary serves it"
	case r.Defect != "":
		return "detected and rolled back; at most 1 % failed; no region but the canary serves it"
	default:
		return "every region ends on it; none failed; no rollback"
	}
}

// MissedRelease returns why row missed its goal, or "" if it met it.
func MissedRelease(row ReleaseRow) string {
	r := row.Release
	var why []string
	switch {
	case ReleaseGoal(r) == "":
		return ""
	case !r.Progressive:
		if !row.Burn.Paged {
			why = append(why, "no page")
		} else if late := row.Burn.Page - row.Traffic; late > pageWithin() {
			why = append(why, fmt.Sprintf("paged %s after its first traffic, later than %s", seconds(late), pageWithin()))
		}
	case r.Defect != "":
		if !row.Detected || !row.RolledBack {
			why = append(why, "not detected and rolled back")
		}
		if r.Load != Quiet && (row.Sent == 0 || float64(row.Failed) > 0.01*float64(row.Sent)) {
			why = append(why, fmt.Sprintf("%d of %d failed, more than 1 %%", row.Failed, row.Sent))
		}
		for region := range row.Served {
			if region != row.Canary {
				why = append(why, region+" served it")
			}
		}
		for region, pct := range row.Reached {
			if region != row.Canary && pct > 0 {
				why = append(why, fmt.Sprintf("%s gave it %d %% of its traffic", region, pct))
			}
		}
	default:
		if row.Failed > 0 {
			why = append(why, fmt.Sprintf("%d failed", row.Failed))
		}
		if row.Detected {
			why = append(why, "rolled back: "+row.Why)
		}
		if !row.Everywhere {
			why = append(why, "not every region ended on it")
		}
	}
	slices.Sort(why)
	return strings.Join(why, "; ")
}

func names(rs []*region) string {
	var n []string
	for _, r := range rs {
		n = append(n, r.name)
	}
	return strings.Join(n, ", ")
}
