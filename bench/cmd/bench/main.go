// Command bench (`make bench`) measures the service side by side with a well-written
// net/http service (its yardstick), the bare net/http baseline and the echo design it
// replaces, and writes BENCHMARKS.md.
//
// Run it with `make bench`, which pins it (and so wrk and the latency
// generator) to CPU 1; each server runs on CPU 0 with GOMAXPROCS=1. Servers
// take turns, in a rotating order, over several rounds, because on a shared
// machine the req/s of the same binary varies a lot from one run to the next.
// CPU time per request varies far less, and is the figure to decide by.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// server is one of the binaries under test.
type server struct {
	name   string
	dir    string // where go build runs: the service in its own module
	pkg    string // what go build builds, relative to dir
	binary string
	env    []string // more environment for every start
	size   int64
	m      measurements
}

// measurements are what the rounds found for one server.
type measurements struct {
	reqPerSec  []float64
	cpuPerReq  []time.Duration
	latency    []latency
	startups   []time.Duration
	rssIdle    []int64 // bytes
	rssPeak    []int64 // bytes, VmHWM after the load
	wrkErrors  int
	rateErrors int
}

// latency is one open-loop run at a fixed rate.
type latency struct {
	p50, p99, p999 time.Duration
}

// options are the command's flags.
type options struct {
	rounds       int
	duration     time.Duration
	rate         int
	rateDuration time.Duration
	startups     int
	connections  int
	slowClients  int
	out          string
	quick        bool
	before       string
	// Start-up as Cloud Run shapes it (startup.go).
	shapedStartups int
	image          string
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 9, "rounds; each server is measured once a round, in a rotating order")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "length of each closed-loop throughput run")
	flag.IntVar(&o.rate, "rate", 2000, "requests a second of the open-loop latency run")
	flag.DurationVar(&o.rateDuration, "rate-duration", 3*time.Second, "length of each open-loop latency run")
	flag.IntVar(&o.startups, "startups", 40, "start-up measurements per server")
	flag.IntVar(&o.connections, "c", 50, "wrk connections")
	flag.IntVar(&o.slowClients, "slow-clients", 500, "slowloris connections against the service")
	flag.StringVar(&o.out, "out", "../BENCHMARKS.md", "where to write the report; empty: stdout only")
	flag.BoolVar(&o.quick, "quick", false, "a short run to check that everything works (figures not for publishing)")
	flag.StringVar(&o.before, "before", "", "also measure the service as it was at this git revision (a commit, a tag, HEAD), as hello@REV")
	flag.IntVar(&o.shapedStartups, "shaped-startups", 100, "Cloud Run-shaped start-ups per server, metadata server and shape")
	flag.StringVar(&o.image, "image", "../dist/oci", "the image's OCI layout (make image) for the start-ups under runc and runsc")
	flag.Parse()
	if o.quick {
		o.rounds, o.duration, o.rateDuration, o.startups, o.slowClients, o.shapedStartups = 2, time.Second, time.Second, 3, 50, 5
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	for _, tool := range []string{"wrk", "taskset", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (Debian: apt-get install wrk util-linux)", tool)
		}
	}
	if cpus := allowedCPUs(); cpus != "1" {
		progress("warning: this process may run on CPUs %q; `make bench` pins it to CPU 1, away from the servers on CPU 0", cpus)
	}
	dir, err := os.MkdirTemp("", "hello-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	servers := []*server{
		{name: "hello", dir: "..", pkg: "."},
		{name: "wellwritten", dir: ".", pkg: "./servers/wellwritten"},
		// The yardstick without http.Server's timeouts: what they cost.
		{name: "wellwritten-notimeouts", dir: ".", pkg: "./servers/wellwritten", env: []string{"LIMITS=off"}},
		{name: "baseline", dir: ".", pkg: "./servers/baseline"},
		{name: "echo", dir: ".", pkg: "./servers/echo"},
	}
	if o.before != "" {
		tree, err := checkout(o.before, dir)
		if err != nil {
			return err
		}
		defer exec.Command("git", "-C", "..", "worktree", "remove", "--force", tree).Run()
		servers = append(servers, &server{name: "hello@" + o.before, dir: tree, pkg: "."})
	}
	for _, s := range servers {
		progress("building %s", s.name)
		if err := build(s, dir); err != nil {
			return err
		}
	}

	for i := range o.startups {
		for _, s := range rotate(servers, i) {
			d, err := startupTime(s)
			if err != nil {
				return err
			}
			s.m.startups = append(s.m.startups, d)
		}
	}
	progress("start-up: %d runs each", o.startups)

	by := map[string]*server{}
	for _, s := range servers {
		by[s.name] = s
	}
	progress("building %s", sizedName)
	sized, err := sizedBaseline(by["baseline"], by["hello"].size, dir)
	if err != nil {
		return err
	}
	shapes, err := shapedStartups(o, dir, by["hello"], by["baseline"], sized, by["hello@"+o.before])
	if err != nil {
		return err
	}

	for round := range o.rounds {
		for _, s := range rotate(servers, round) {
			progress("round %d/%d: %s", round+1, o.rounds, s.name)
			if err := measure(s, o); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}

	slow, err := slowClients(servers[0], o)
	if err != nil {
		return fmt.Errorf("slow clients: %w", err)
	}

	progress("micro-benchmarks (go test -bench)")
	micro, err := microBenchmarks(o)
	if err != nil {
		return err
	}

	report := writeReport(servers, shapes, slow, micro, o)
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
		progress("wrote %s", o.out)
	}
	return nil
}

// checkout puts the service's source at rev in a git worktree under dir, so
// that it can be built and measured beside the working tree.
func checkout(rev, dir string) (string, error) {
	tree := filepath.Join(dir, "before")
	out, err := exec.Command("git", "-C", "..", "worktree", "add", "--detach", tree, rev).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("-before %s: git worktree add: %v\n%s", rev, err, out)
	}
	return tree, nil
}

// proc is a server process under test.
type proc struct {
	cmd  *exec.Cmd
	port int
	logs bytes.Buffer
}

// start runs s pinned to CPU 0 with GOMAXPROCS=1.
func start(s *server) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &proc{port: port}
	p.cmd = exec.Command("taskset", "-c", "0", s.binary)
	p.cmd.Env = append([]string{"PORT=" + strconv.Itoa(port), "REGION=europe-west1", "GOMAXPROCS=1"}, s.env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *proc) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", p.port, path) }

// stop ends the process.
func (p *proc) stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// waitReady polls /health/ as fast as it can until it answers 200, and returns
// the time from exec to that answer.
func (p *proc) waitReady(started time.Time) (time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := started.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(p.url("/health/"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(started), nil
			}
		}
		time.Sleep(50 * time.Microsecond)
	}
	return 0, fmt.Errorf("no answer on /health/ within 10s; output:\n%s", p.logs.String())
}

// startupTime is exec to the first 200 on /health/.
func startupTime(s *server) (time.Duration, error) {
	started := time.Now()
	p, err := start(s)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	return p.waitReady(started)
}

// measure runs one round for s: closed-loop throughput with wrk, with the
// server's CPU time over it, then latency at a fixed rate, then memory.
func measure(s *server, o options) error {
	p, err := start(s)
	if err != nil {
		return err
	}
	defer p.stop()
	if _, err := p.waitReady(time.Now()); err != nil {
		return err
	}
	pid := p.cmd.Process.Pid
	time.Sleep(200 * time.Millisecond)
	s.m.rssIdle = append(s.m.rssIdle, procStatusBytes(pid, "VmRSS"))

	// Warm up, then measure.
	if _, err := wrk(p.url("/"), o.connections, time.Second); err != nil {
		return err
	}
	before := cpuTime(pid)
	res, err := wrk(p.url("/"), o.connections, o.duration)
	if err != nil {
		return err
	}
	used := cpuTime(pid) - before
	s.m.reqPerSec = append(s.m.reqPerSec, res.reqPerSec)
	s.m.cpuPerReq = append(s.m.cpuPerReq, used/time.Duration(max(res.requests, 1)))
	s.m.wrkErrors += res.errors

	lat, failed, err := fixedRate(p.url("/"), o.rate, o.rateDuration)
	if err != nil {
		return err
	}
	s.m.latency = append(s.m.latency, lat)
	s.m.rateErrors += failed
	s.m.rssPeak = append(s.m.rssPeak, procStatusBytes(pid, "VmHWM"))
	return nil
}

// wrkResult is what wrk reported.
type wrkResult struct {
	reqPerSec float64
	requests  int
	errors    int
}

// wrk runs a closed-loop load: one thread, c connections.
func wrk(url string, c int, d time.Duration) (wrkResult, error) {
	out, err := exec.Command("wrk", "-t1", "-c"+strconv.Itoa(c), "-d"+d.String(), url).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	var r wrkResult
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "Requests/sec:":
			r.reqPerSec, _ = strconv.ParseFloat(f[1], 64)
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			r.requests, _ = strconv.Atoi(f[0])
		case len(f) >= 2 && f[0] == "Non-2xx":
			n, _ := strconv.Atoi(f[len(f)-1])
			r.errors += n
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			for _, part := range strings.Split(strings.Join(f[2:], " "), ",") {
				if kv := strings.Fields(part); len(kv) == 2 {
					n, _ := strconv.Atoi(kv[1])
					r.errors += n
				}
			}
		}
	}
	if r.requests == 0 {
		return r, fmt.Errorf("wrk reported no requests:\n%s", out)
	}
	return r, nil
}

// fixedRate sends rate requests a second for d, open loop (the schedule does not
// wait for answers), and returns exact percentiles and the number of failures.
func fixedRate(url string, rate int, d time.Duration) (latency, int, error) {
	attacker := vegeta.NewAttacker(vegeta.Timeout(5*time.Second), vegeta.KeepAlive(true))
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url})
	var ls []time.Duration
	failed := 0
	for r := range attacker.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, d, "bench") {
		if r.Code != http.StatusOK {
			failed++
			continue
		}
		ls = append(ls, r.Latency)
	}
	if len(ls) == 0 {
		return latency{}, failed, errors.New("no request succeeded at a fixed rate")
	}
	slices.Sort(ls)
	at := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(ls)))) - 1
		return ls[max(0, min(i, len(ls)-1))]
	}
	return latency{p50: at(0.50), p99: at(0.99), p999: at(0.999)}, failed, nil
}

// slowResult is what the slow-clients run found.
type slowResult struct {
	clients              int
	unloaded, loaded     latency
	unloadedErr, loadErr int
	closed               int
	closedAfter          []time.Duration
}

// slowClients opens o.slowClients connections to the service that send their
// headers a byte a second (slowloris), measures normal requests at a fixed rate
// before and during, and counts the slow connections the server closes.
func slowClients(s *server, o options) (slowResult, error) {
	progress("slow clients: %d connections dribbling headers", o.slowClients)
	r := slowResult{clients: o.slowClients}
	p, err := start(s)
	if err != nil {
		return r, err
	}
	defer p.stop()
	if _, err := p.waitReady(time.Now()); err != nil {
		return r, err
	}
	// A p99 from a few seconds at this rate moves a lot; the windows are at
	// least 5 s, the header limit, long.
	rate, window := max(o.rate/4, 100), o.rateDuration
	if !o.quick {
		window = max(window, 5*time.Second)
	}
	if r.unloaded, r.unloadedErr, err = fixedRate(p.url("/"), rate, window); err != nil {
		return r, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	closed := make(chan time.Duration, o.slowClients)
	opened := time.Now()
	for range o.slowClients {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port))
		if err != nil {
			return r, fmt.Errorf("opening slow connection: %w", err)
		}
		go dribble(ctx, conn, opened, closed)
	}
	if r.loaded, r.loadErr, err = fixedRate(p.url("/"), rate, window); err != nil {
		return r, err
	}
	// The header limit is 5s; give the server 5s more to act on it.
	deadline := time.After(10*time.Second - time.Since(opened))
wait:
	for r.closed < o.slowClients {
		select {
		case d := <-closed:
			r.closed++
			r.closedAfter = append(r.closedAfter, d)
		case <-deadline:
			break wait
		}
	}
	slices.Sort(r.closedAfter)
	return r, nil
}

// dribble sends a request's headers one byte a second and reports, on closed,
// how long after opened the server closed the connection.
func dribble(ctx context.Context, conn net.Conn, opened time.Time, closed chan<- time.Duration) {
	defer conn.Close()
	go func() {
		// The server closes the connection; a read returns then.
		conn.Read(make([]byte, 1024))
		closed <- time.Since(opened)
		conn.Close()
	}()
	header := "GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: " + strings.Repeat("a", 1000)
	for i := 0; i < len(header); i++ {
		if _, err := conn.Write([]byte{header[i]}); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// microResult is the go test -bench comparison.
type microResult struct {
	benchstat string
	allocs    map[string]float64 // allocs/op by server
	layers    []layer            // BenchmarkLayers, in the order it ran them
}

// layer is one row of BenchmarkLayers: chi and the routes, then each
// middleware added in turn.
type layer struct {
	name          string
	nsPerOp       float64 // median over the counts
	allocsPerOp   float64
	bytesPerOp    float64
	nsPerOpSample []float64
}

// microBenchmarks runs BenchmarkRoot in the service's package (server=hello), the
// well-written service's (server=wellwritten) and the baseline's
// (server=baseline), and compares them with benchstat; and BenchmarkLayers in
// the service's package.
func microBenchmarks(o options) (microResult, error) {
	count := "10"
	if o.quick {
		count = "2"
	}
	var out []byte
	for _, dir := range []string{"..", "wellwritten", "baseline"} {
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^(BenchmarkRoot|BenchmarkLayers)$", "-benchmem", "-count", count, ".")
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		if err != nil {
			return microResult{}, fmt.Errorf("go test -bench in %s: %v\n%s", dir, err, b)
		}
		out = append(out, b...)
	}
	res := microResult{allocs: map[string]float64{}}
	sums, counts := map[string]float64{}, map[string]float64{}
	var rootLines []string
	byLayer := map[string]*layer{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[7] != "allocs/op" {
			if !strings.HasPrefix(line, "BenchmarkLayers") {
				rootLines = append(rootLines, line)
			}
			continue
		}
		bench, name, ok := strings.Cut(f[0], "=")
		if !ok {
			continue
		}
		// With more than one CPU, go test appends -GOMAXPROCS to the name.
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		ns, _ := strconv.ParseFloat(f[2], 64)
		bytes, _ := strconv.ParseFloat(f[4], 64)
		allocs, _ := strconv.ParseFloat(f[6], 64)
		switch bench {
		case "BenchmarkRoot/server":
			rootLines = append(rootLines, line)
			sums[name] += allocs
			counts[name]++
		case "BenchmarkLayers/layers":
			l := byLayer[name]
			if l == nil {
				l = &layer{name: name}
				byLayer[name] = l
				res.layers = append(res.layers, layer{name: name})
			}
			l.nsPerOpSample = append(l.nsPerOpSample, ns)
			l.allocsPerOp, l.bytesPerOp = allocs, bytes
		}
	}
	for k := range sums {
		res.allocs[k] = sums[k] / counts[k]
	}
	for i := range res.layers {
		l := byLayer[res.layers[i].name]
		l.nsPerOp = median(l.nsPerOpSample)
		res.layers[i] = *l
	}
	file := filepath.Join(os.TempDir(), "hello-bench-micro.txt")
	if err := os.WriteFile(file, []byte(strings.Join(rootLines, "\n")), 0o644); err != nil {
		return res, err
	}
	defer os.Remove(file)
	// Only benchstat's standard output goes into the report: the go command
	// writes "go: downloading" lines to standard error on a new machine.
	var stderr bytes.Buffer
	cmd := exec.Command("go", "tool", "benchstat", "-ignore", "pkg", "-col", "/server", file)
	cmd.Stderr = &stderr
	stat, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("benchstat: %v\n%s", err, stderr.Bytes())
	}
	res.benchstat = string(stat)
	return res, nil
}

// rotate returns servers starting at i, so that no server always goes first.
func rotate(servers []*server, i int) []*server {
	i %= len(servers)
	return append(slices.Clone(servers[i:]), servers[:i]...)
}

// cpuTime is the CPU time pid's threads have run, in nanoseconds: the sum of
// the first field of /proc/PID/task/*/schedstat. /proc/PID/stat counts it in
// ticks of 10 ms, too coarse for runs of a few seconds.
func cpuTime(pid int) time.Duration {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // the thread has just ended
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

// procStatusBytes reads a kB field (VmRSS, VmHWM) of /proc/PID/status.
func procStatusBytes(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// allowedCPUs is this process's Cpus_allowed_list.
func allowedCPUs() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return "?"
}

// build compiles s into dir with the image's build flags (.ko.yaml), for every
// server alike, and records the binary's size. args go before the package: more
// flags for go build.
func build(s *server, dir string, args ...string) error {
	s.binary = filepath.Join(dir, strings.ReplaceAll(s.name, "/", "_"))
	args = append([]string{"build", "-trimpath", "-tags=nethttpomithttp2", "-ldflags=-s -w", "-o", s.binary}, args...)
	cmd := exec.Command("go", append(args, s.pkg)...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", s.pkg, err, out)
	}
	fi, err := os.Stat(s.binary)
	if err != nil {
		return err
	}
	s.size = fi.Size()
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// median returns the median of xs.
func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		var zero T
		return zero
	}
	return s[len(s)/2]
}

// machine describes where the figures were measured.
func machine() string {
	model, cpus := "unknown CPU", 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "model name"); ok && model == "unknown CPU" {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
			}
			if strings.HasPrefix(line, "processor") {
				cpus++
			}
		}
	}
	// runtime.NumCPU would count only the CPUs this process is pinned to.
	return fmt.Sprintf("%s, %d CPUs, %s/%s, %s", model, cpus, runtime.GOOS, runtime.GOARCH, goVersion())
}

func goVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}
