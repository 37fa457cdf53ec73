// Package faults proves, on one machine, what the service and a global load
// balancer do when a region fails: three instances of the service, each in a
// network namespace of its own, behind HAProxy configured as Google's load
// balancer can be; a steady open-loop load; and one fault at a time injected into
// the region that serves, then healed, with retries on and then off.
//
// It needs root, iproute2, nftables and HAProxy, and touches only what it
// creates: namespaces, links and processes named with Prefix, and addresses on
// its own bridge. It removes all of them when it ends, also when interrupted.
package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Options configure a run of the matrix.
type Options struct {
	// Binary is the hello server; Toxiproxy the toxiproxy server.
	Binary, Toxiproxy string
	// Regions are the instances' regions, the nearest (which serves) first.
	Regions []string
	// Rate is the load's requests a second.
	Rate int
	// Before, During and After are how long the load runs before the fault,
	// while it lasts, and after it is healed.
	Before, During, After time.Duration
	// Faults are the names of the faults to inject; empty means all, and
	// "none" none.
	Faults []string
	// Releases are the IDs of the release rows to run; empty means all, and
	// "none" none. Source is the service's source, which the bad releases'
	// defects are built from.
	Releases []string
	Source   string
	// Dir holds HAProxy's configuration and socket.
	Dir string
	// Out receives progress.
	Out io.Writer
}

// DefaultRegions are three regions in the order a client in Europe prefers them.
func DefaultRegions() []string { return []string{"europe-west1", "europe-west4", "us-east1"} }

// Fault is one way the serving region fails, and how it heals.
type Fault struct {
	Name string
	// How says what is done, for the report.
	How string
	// Delay is the serving instance's SHUTDOWN_DELAY.
	Delay time.Duration
	// GoalZero says that no request may fail with retries on.
	GoalZero bool

	inject, heal func(h *harness, r *region) error
}

// Matrix returns every fault, in the order they are injected.
func Matrix() []Fault {
	restart := func(h *harness, r *region) error { return h.restart(r) }
	return []Fault{
		{Name: "graceful", How: "SIGTERM, SHUTDOWN_DELAY=2s", Delay: 2 * time.Second, GoalZero: true,
			inject: signal(syscall.SIGTERM), heal: restart},
		{Name: "graceful-nodelay", How: "SIGTERM, SHUTDOWN_DELAY=0", GoalZero: true,
			inject: signal(syscall.SIGTERM), heal: restart},
		{Name: "crash", How: "SIGKILL", Delay: 2 * time.Second, GoalZero: true,
			inject: signal(syscall.SIGKILL), heal: restart},
		{Name: "freeze", How: "SIGSTOP (the kernel still accepts), then SIGCONT", Delay: 2 * time.Second, GoalZero: true,
			inject: signal(syscall.SIGSTOP), heal: signal(syscall.SIGCONT)},
		{Name: "partition", How: "the region's link down, then up", Delay: 2 * time.Second, GoalZero: true,
			inject: func(h *harness, r *region) error { return ip(h.ctx, "link", "set", r.veth, "down") },
			heal:   func(h *harness, r *region) error { return ip(h.ctx, "link", "set", r.veth, "up") }},
		{Name: "slow", How: "300 ms added to every request's path (toxiproxy)", Delay: 2 * time.Second, GoalZero: true,
			inject: func(h *harness, r *region) error { return h.slow(r, 300*time.Millisecond) },
			heal:   func(h *harness, r *region) error { return h.slow(r, 0) }},
		{Name: "loss", How: "20 % of the region's packets dropped, each way (nftables)", Delay: 2 * time.Second, GoalZero: true,
			inject: func(h *harness, r *region) error { return nft(h.ctx, r, lossRules) },
			heal:   func(h *harness, r *region) error { return nft(h.ctx, r, "delete table inet "+Prefix+"\n") }},
	}
}

// lossRules drop 20 % of the packets in each direction.
const lossRules = `table inet ` + Prefix + ` {
	chain in { type filter hook input priority 0; policy accept; numgen random mod 100 < 20 drop; }
	chain out { type filter hook output priority 0; policy accept; numgen random mod 100 < 20 drop; }
}
`

func signal(sig syscall.Signal) func(*harness, *region) error {
	return func(_ *harness, r *region) error { return r.signal(sig) }
}

// nft loads rules into the region's namespace.
func nft(ctx context.Context, r *region, rules string) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", r.ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s", r.ns, err, out)
	}
	return nil
}

// Row is what one fault did to the load, with retries on or off.
type Row struct {
	Fault   Fault
	Retries bool
	// Sent and Failed count the whole row: before, during and after the fault.
	Sent, Failed int
	// Failures counts the failed requests by kind.
	Failures map[string]int
	// P50, P99 and Max are the latencies of the requests sent during the fault
	// that were answered.
	P50, P99, Max time.Duration
	// Moved is how long after the fault every request was answered by another
	// region: none by the faulty one, none failed. NotMoved says that did not
	// happen before the fault was healed.
	Moved    time.Duration
	NotMoved bool
	// Back is how long after healing every answer came from that region again;
	// NotBack says that it had not by the end.
	Back    time.Duration
	NotBack bool
	// Down is how long after the fault the load balancer marked the region
	// down, and Up how long after healing it marked it up again; NotDown and
	// NotUp say that it did not.
	Down, Up       time.Duration
	NotDown, NotUp bool
	// Exit is how a stopped instance ended, for the faults that stop it.
	Exit string
	// Injected is when the fault was injected, since the load began; Burn is
	// what the objectives' burn-rate alerts would have made of the row.
	Injected time.Duration
	Burn     Burn
}

// harness is the running set-up: regions, load balancer and proxy.
type harness struct {
	ctx     context.Context
	o       Options
	regions []*region
	lb      *haproxy
	toxi    *toxiproxy
	proxies map[string]int // toxiproxy's port for each region
	delay   time.Duration  // the serving instance's SHUTDOWN_DELAY now
	exit    string         // how the serving instance ended, after a restart
	mon     *monitor       // the release rows' Cloud Monitoring
	policy  Policy         // the release pipeline's, scaled
	slo     Objectives     // monitoring.tf's objectives and alerts, scaled
}

// Results are a run's rows: the faults', with retries on and then off, and the
// releases'.
type Results struct {
	Faults   []Row
	Releases []ReleaseRow
}

// Run runs the matrix: every fault with retries on, then with retries off, then
// every release row. It returns the rows measured so far and the first error.
// Everything it made is removed before it returns.
func Run(ctx context.Context, o Options) (res Results, err error) {
	if err := Requirements(); err != nil {
		return res, err
	}
	if len(o.Regions) < 2 {
		return res, errors.New("the fault matrix needs at least two regions")
	}
	faults, err := choose(Matrix(), o.Faults, func(f Fault) string { return f.Name }, "fault")
	if err != nil {
		return res, err
	}
	releases, err := choose(Releases(), o.Releases, func(r Release) string { return r.ID }, "release")
	if err != nil {
		return res, err
	}
	h := &harness{ctx: ctx, o: o, proxies: map[string]int{}, mon: newMonitor(), policy: ReleasePolicy().Scaled(ReleaseTimeScale),
		slo: DefaultObjectives().Scaled(ReleaseTimeScale)}
	defer func() {
		err = errors.Join(err, h.close())
	}()
	// The bad releases' binaries first: a defect that no longer applies to the
	// source should stop the run before anything is set up.
	binaries := map[string]string{"": o.Binary}
	for _, r := range releases {
		if _, ok := binaries[r.Defect]; !ok {
			if o.Source == "" {
				return res, errors.New("the release rows need the service's source (-source) to build the bad releases")
			}
			fmt.Fprintf(o.Out, "building the %s defect from %s\n", r.Defect, o.Source)
			if binaries[r.Defect], err = buildDefect(ctx, o.Source, o.Dir, defects[r.Defect]); err != nil {
				return res, err
			}
		}
	}
	if h.regions, err = setUp(ctx, o.Regions); err != nil {
		return res, err
	}
	for i, r := range h.regions {
		delay := 2 * time.Second
		if i == 0 && len(faults) > 0 {
			delay = faults[0].Delay
		}
		if i == 0 {
			h.delay = delay
		}
		if err := r.start(ctx, o.Binary, delay); err != nil {
			return res, err
		}
	}
	if h.toxi, err = startToxiproxy(ctx, o.Toxiproxy); err != nil {
		return res, err
	}
	for _, r := range h.regions {
		port, err := h.toxi.proxy(r.name, fmt.Sprintf("%s:%d", r.addr, regionPort))
		if err != nil {
			return res, err
		}
		h.proxies[r.name] = port
	}
	fmt.Fprintf(o.Out, "%d regions in network namespaces %s-r0..r%d on %s.0/24; load %d requests/s; each fault %s into the load, healed %s later, then %s more\n",
		len(h.regions), Prefix, len(h.regions)-1, subnet, o.Rate, o.Before, o.During, o.After)

	for _, retries := range []bool{true, false} {
		if len(faults) == 0 {
			break
		}
		if h.lb, err = startHAProxy(ctx, o.Dir, h.regions, retries); err != nil {
			return res, err
		}
		for _, f := range faults {
			row, err := h.row(f, retries)
			if err != nil {
				return res, fmt.Errorf("%s (retries %s): %w", f.Name, onOff(retries), err)
			}
			res.Faults = append(res.Faults, row)
			fmt.Fprintf(o.Out, "    %s\n", summary(row))
		}
		h.lb.stop()
		h.lb = nil
	}

	if len(releases) == 0 {
		return res, nil
	}
	fmt.Fprintf(o.Out, "releases: the clients near each region send 1/%d of the load; canary %s; policy scaled 1/%d in time: %s\n",
		len(h.regions), h.regions[0].name, ReleaseTimeScale, h.policy)
	if h.lb, err = startReleaseHAProxy(ctx, o.Dir, h.regions, h.mon); err != nil {
		return res, err
	}
	holds := map[string]time.Duration{}
	for _, r := range releases {
		hold, ok := holds[r.Defect]
		if !ok {
			hold = 10 * time.Second
		}
		row, err := h.releaseRow(r, binaries[r.Defect], hold)
		if err != nil {
			return res, fmt.Errorf("%s: %w", r.ID, err)
		}
		if r.Progressive && r.Load == Loaded {
			holds[r.Defect] = row.Window - h.policy.Job
		}
		res.Releases = append(res.Releases, row)
		fmt.Fprintf(o.Out, "    %s\n", releaseSummary(row))
	}
	return res, nil
}

// choose returns the items whose names are in names: all of them when names is
// empty, none when it is ["none"].
func choose[T any](all []T, names []string, name func(T) string, kind string) ([]T, error) {
	if len(names) == 0 {
		return all, nil
	}
	if len(names) == 1 && names[0] == "none" {
		return nil, nil
	}
	var chosen, known []string
	var out []T
	for _, item := range all {
		known = append(known, name(item))
		if slices.Contains(names, name(item)) {
			out = append(out, item)
			chosen = append(chosen, name(item))
		}
	}
	for _, n := range names {
		if !slices.Contains(chosen, n) {
			return nil, fmt.Errorf("unknown %s %q; the %ss are %s, or none", kind, n, kind, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// Names returns the faults' names.
func Names() []string {
	var names []string
	for _, f := range Matrix() {
		names = append(names, f.Name)
	}
	return names
}

// row runs one fault under load and measures it.
func (h *harness) row(f Fault, retries bool) (Row, error) {
	primary := h.regions[0]
	if h.delay != f.Delay {
		h.delay = f.Delay
		if err := h.restart(primary); err != nil {
			return Row{}, err
		}
	}
	if err := h.waitServing(primary); err != nil {
		return Row{}, err
	}
	fmt.Fprintf(h.o.Out, "%-16s retries %-3s  %s ", f.Name, onOff(retries), f.How)

	began := time.Now()
	loadCtx, stopLoad := context.WithCancel(h.ctx)
	defer stopLoad()
	done := make(chan []outcome, 1)
	go func() { done <- openLoop(loadCtx, []string{h.lb.url}, h.o.Rate, began) }()
	states := make(chan []state, 1)
	go func() { states <- h.watchServer(loadCtx, primary.name, began) }()

	if err := sleep(h.ctx, h.o.Before); err != nil {
		return Row{}, err
	}
	injected := time.Since(began)
	if err := f.inject(h, primary); err != nil {
		return Row{}, fmt.Errorf("injecting: %w", err)
	}
	fmt.Fprint(h.o.Out, "· injected ")
	if err := sleep(h.ctx, h.o.During); err != nil {
		primary.signal(syscall.SIGCONT)
		return Row{}, err
	}
	healed := time.Since(began)
	h.exit = ""
	if err := f.heal(h, primary); err != nil {
		return Row{}, fmt.Errorf("healing: %w", err)
	}
	fmt.Fprint(h.o.Out, "· healed ")
	if err := sleep(h.ctx, h.o.After); err != nil {
		return Row{}, err
	}
	ended := time.Since(began)
	stopLoad()
	outcomes, timeline := <-done, <-states
	fmt.Fprintln(h.o.Out, "· done")
	if h.ctx.Err() != nil {
		return Row{}, h.ctx.Err()
	}
	row := measure(outcomes, primary.name, injected, healed, ended, time.Second/time.Duration(h.o.Rate))
	row.Down, row.NotDown = firstState(timeline, injected, healed, false)
	row.Up, row.NotUp = firstState(timeline, healed, ended, true)
	row.Fault, row.Retries, row.Exit = f, retries, h.exit
	row.Injected, row.Burn = injected, burn(outcomes, float64(h.o.Rate), h.slo, ended)
	return row, nil
}

// state is what the load balancer thought of a server at a moment.
type state struct {
	at time.Duration // since the load began
	up bool
}

// watchServer polls the load balancer's view of the server named region every
// 20 ms until ctx ends.
func (h *harness) watchServer(ctx context.Context, region string, began time.Time) []state {
	var states []state
	for {
		if up, err := h.lb.serverUp(region); err == nil {
			states = append(states, state{at: time.Since(began), up: up})
		}
		if sleep(ctx, 20*time.Millisecond) != nil {
			return states
		}
	}
}

// firstState returns how long after from the server was first seen up (or
// down), before to; or true when it was not.
func firstState(states []state, from, to time.Duration, up bool) (time.Duration, bool) {
	for _, s := range states {
		if s.at >= from && s.at < to && s.up == up {
			return s.at - from, false
		}
	}
	return 0, true
}

// restart starts the region's instance again, after it has exited, and notes
// how the old one ended.
func (h *harness) restart(r *region) error {
	exited, err := r.exitWithin(0)
	if !exited {
		r.stop()
		exited, err = r.exitWithin(0)
	}
	switch {
	case !exited:
		h.exit = "did not exit"
	case err == nil:
		h.exit = "exit 0"
	default:
		h.exit = err.Error()
	}
	return r.start(h.ctx, h.o.Binary, h.delay)
}

// slow adds d to every request's path to r, through toxiproxy, or with d = 0
// takes it away again: HAProxy is pointed at r's proxy, and back.
func (h *harness) slow(r *region, d time.Duration) error {
	if d == 0 {
		return errors.Join(h.lb.setServerAddr(r.name, r.addr, regionPort), h.toxi.removeLatency(r.name))
	}
	if err := h.toxi.addLatency(r.name, d); err != nil {
		return err
	}
	return h.lb.setServerAddr(r.name, "127.0.0.1", h.proxies[r.name])
}

// waitServing waits until the load balancer sends every request to r.
func (h *harness) waitServing(r *region) error { return h.waitServedBy(h.lb.url, r) }

// waitServedBy waits until requests to url are answered by r's serving
// instance: 20 answers in a row from it, none naming a release's revision.
func (h *harness) waitServedBy(url string, r *region) error {
	deadline := time.Now().Add(15 * time.Second)
	client := newClient()
	defer client.CloseIdleConnections()
	inARow := 0
	for inARow < 20 {
		if time.Now().After(deadline) {
			return fmt.Errorf("requests to %s were not answered by %s within 15s; haproxy said:\n%s", url, r.name, h.lb.output())
		}
		if o := get(client, url); o.failure == "" && o.region == r.name && o.revision == "" {
			inARow++
		} else {
			inARow = 0
			if err := sleep(h.ctx, 50*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// close stops everything and removes the namespaces and links.
func (h *harness) close() error {
	if h.lb != nil {
		h.lb.stop()
	}
	if h.toxi != nil {
		h.toxi.stop()
	}
	for _, r := range h.regions {
		r.stop()
		if r.next != nil {
			r.next.stop()
		}
	}
	return Cleanup()
}

// measure reduces a row's outcomes to its figures. Times are since the load
// began; interval is the time between two requests.
func measure(outcomes []outcome, primary string, injected, healed, ended, interval time.Duration) Row {
	slices.SortFunc(outcomes, func(a, b outcome) int { return int(a.start - b.start) })
	row := Row{Sent: len(outcomes), Failures: map[string]int{}}
	var during []time.Duration
	lastPrimary, lastOther := time.Duration(-1), time.Duration(-1)
	for _, o := range outcomes {
		if o.failure != "" {
			row.Failed++
			row.Failures[o.failure]++
		}
		switch {
		case o.start >= injected && o.start < healed:
			if o.failure == "" {
				during = append(during, o.latency)
			}
			if o.region == primary || o.failure != "" {
				lastPrimary = o.start
			}
		case o.start >= healed:
			if o.region != primary {
				lastOther = o.start
			}
		}
	}
	slices.Sort(during)
	if n := len(during); n > 0 {
		row.P50, row.P99, row.Max = during[n*50/100], during[min(n-1, n*99/100)], during[n-1]
	}
	// Half a second without a sign of the change at the end of a phase means
	// the change did not happen within it.
	const settle = 500 * time.Millisecond
	switch {
	case lastPrimary < 0:
		row.Moved = 0
	case lastPrimary >= healed-settle:
		row.NotMoved = true
	default:
		row.Moved = lastPrimary + interval - injected
	}
	switch {
	case lastOther < 0:
		row.Back = 0
	case lastOther >= ended-settle:
		row.NotBack = true
	default:
		row.Back = lastOther + interval - healed
	}
	return row
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
