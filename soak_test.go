//go:build soak

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/example/hello/internal/probe"
)

// TestSoak sends a fixed rate for SOAK_DURATION (60s) and checks that nothing
// fails and nothing grows. Goroutines are compared at rest, before and after the
// load: during it, keep-alive connections come and go, each with goroutines of
// its own, so a count taken then moves without any leak. RSS is compared during
// the load, the last ten seconds against the ten after a five-second warm-up.
// The probe that sends the load runs in this process too; it keeps its summary
// in fixed memory and closes its connections when it returns. `make soak` runs
// it; it is behind the soak build tag because it takes a minute.
func TestSoak(t *testing.T) {
	duration := 60 * time.Second
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 20*time.Second {
			t.Fatalf("SOAK_DURATION=%q: want a duration of at least 20s", v)
		}
		duration = d
	}
	const rate = 1000
	s := startRun(t, map[string]string{"REGION": "europe-west1"})

	// A second of load first, so that whatever is started once (the runtime's
	// and net/http's own goroutines) is running before the count at rest.
	warm, err := probe.Run(context.Background(), probe.Options{URL: s.url + "/", Requests: rate, Concurrency: 8, Rate: rate, Timeout: 5 * time.Second}, time.Second, nil)
	if err != nil || warm.Errors != 0 {
		t.Fatalf("warm-up: %v, %d errors", err, warm.Errors)
	}
	before := goroutinesAtRest(t, 0)

	type sample struct {
		rss      int64
		requests int
		errors   int
	}
	var samples []sample
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	res, err := probe.Watch(ctx, probe.Options{URL: s.url + "/", Concurrency: 8, Rate: rate, Timeout: 5 * time.Second}, time.Second,
		func(w probe.Window) {
			samples = append(samples, sample{rss(), w.Result.Requests, w.Errors})
			if n := len(samples); n%10 == 0 {
				t.Logf("%3ds: %d requests/s, %d errors, %d goroutines, RSS %.1f MiB", n, w.Result.Requests, w.Errors, runtime.NumGoroutine(), float64(samples[n-1].rss)/(1<<20))
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) < 20 {
		t.Fatalf("only %d one-second samples", len(samples))
	}
	after := goroutinesAtRest(t, before)

	// The first five seconds warm up (the heap finds its size); the last window
	// is a fraction of a second. Both are left out. Medians: a brief peak moves
	// a single sample; growth moves them all.
	const warmUp = 5
	full := samples[:len(samples)-1]
	first, last := full[warmUp:warmUp+10], full[len(full)-10:]
	med := func(ss []sample) float64 {
		vs := make([]float64, len(ss))
		for i, s := range ss {
			vs[i] = float64(s.rss)
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	r0, r1 := med(first), med(last)
	t.Logf("soak: %d requests in %s at %d/s, %d errors", res.Requests, duration, rate, res.Errors)
	t.Logf("soak: goroutines at rest %d before the load, %d after it", before, after)
	t.Logf("soak: RSS (median) %.1f MiB in seconds 5-15, %.1f MiB in the last 10s", r0/(1<<20), r1/(1<<20))
	t.Logf("soak: latency p50 %s, p99 %s, max %s", res.Overall.P50, res.Overall.P99, res.Overall.Max)

	if res.Errors != 0 {
		t.Errorf("%d requests failed: %+v", res.Errors, res.ErrorCounts)
	}
	if res.Requests < int(duration.Seconds())*rate*7/10 {
		t.Errorf("%d requests in %s, want about %d: the rate was not kept (the machine was too busy to send it)", res.Requests, duration, int(duration.Seconds())*rate)
	}
	if after > before {
		t.Errorf("goroutines at rest grew from %d to %d: a leak; those running now:\n%s", before, after, goroutineDump())
	}
	if r1 > r0*1.10+(1<<20) {
		t.Errorf("RSS grew from %.1f MiB to %.1f MiB: more than 10%% + 1 MiB", r0/(1<<20), r1/(1<<20))
	}
}

// goroutinesAtRest returns the number of goroutines once the count has stopped
// falling: the load's connections close a moment after the client closes its
// side. With a target above 0 it stops early once the count is at or below it,
// and gives up after 10 s.
func goroutinesAtRest(t *testing.T, target int) int {
	t.Helper()
	n, deadline := runtime.NumGoroutine(), time.Now().Add(10*time.Second)
	for time.Now().Before(deadline) {
		if target > 0 && n <= target {
			return n
		}
		time.Sleep(200 * time.Millisecond)
		next := runtime.NumGoroutine()
		if target == 0 && next == n {
			return n
		}
		n = next
	}
	return n
}

// goroutineDump returns every goroutine's stack, grouped, for a leak report.
func goroutineDump() string {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}

// rss is this process's resident set size.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
func TestSlowClientsAreCutOffWhileOthersAreServed(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"REGION": "europe-west1"})
	const slow = 50
	closed := make(chan time.Duration, slow)
	opened := time.Now()
	for range slow {
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go func() {
			go func() {
				for i := 0; ; i++ { // a header byte every 300ms, never the end
					if _, err := conn.Write([]byte{"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[i%50]}); err != nil {
						return
					}
					time.Sleep(300 * time.Millisecond)
				}
			}()
			conn.Read(make([]byte, 512)) // returns once the server closes the connection
			closed <- time.Since(opened)
		}()
	}
	// Normal requests are served all the while.
	for i := range 50 {
		if resp, _ := s.get("/", nil); resp.StatusCode != 200 {
			t.Fatalf("request %d with %d slow clients open: status %d", i, slow, resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range slow {
		select {
		case d := <-closed:
			if d < readHeaderTimeout-time.Second {
				t.Errorf("a slow connection was closed after %s, before the header limit (%s)", d, readHeaderTimeout)
			}
		case <-time.After(readHeaderTimeout + 10*time.Second):
			t.Fatalf("slow connections still open %s after the header limit", 10*time.Second)
		}
	}
}

func TestShutdownUnderLoadAnswersEveryAcceptedRequest(t *testing.T) {
	t.Parallel()
	cmd, stdout, _, done := startMain(t, "PORT=0", "REGION=europe-west1", "SHUTDOWN_TIMEOUT=5s")
	line := waitForLog(t, stdout, "listening", done)
	addr := fmt.Sprintf("127.0.0.1:%d", int(line["port"].(float64)))

	// A fixed rate of 400 requests a second, each on its own connection, until
	// the process has exited.
	type outcome struct {
		ok, refused int
		failed      []string
	}
	results := make(chan outcome, 1)
	stop := make(chan struct{})
	go func() {
		var o outcome
		var mu sync.Mutex
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / 400)
		defer tick.Stop()
	send:
		for {
			select {
			case <-stop:
				break send
			case <-tick.C:
			}
			wg.Go(func() {
				status, connected, err := rawGet(addr)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && status == 200:
					o.ok++
				case !connected:
					// Not accepted: refused once the listener was closed, or reset
					// while the handshake was still under way when it closed.
					o.refused++
				case err != nil:
					o.failed = append(o.failed, err.Error())
				default:
					o.failed = append(o.failed, fmt.Sprintf("status %d", status))
				}
			})
		}
		wg.Wait()
		results <- o
	}()

	time.Sleep(time.Second)
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := waitExit(t, done)
	exitAfter := time.Since(sent)
	time.Sleep(300 * time.Millisecond) // some requests after the exit, to be refused
	close(stop)
	o := <-results

	t.Logf("%d answered 200, %d refused after the listener closed, %d failed; exit %v after %s", o.ok, o.refused, len(o.failed), err, exitAfter.Round(time.Millisecond))
	if err != nil {
		t.Errorf("the command ended with %v after SIGTERM under load, want exit status 0", err)
	}
	if exitAfter > 5*time.Second {
		t.Errorf("exit %s after SIGTERM, want within SHUTDOWN_TIMEOUT=5s", exitAfter)
	}
	if len(o.failed) > 0 {
		t.Errorf("%d accepted requests were not answered 200: %v", len(o.failed), o.failed[:min(len(o.failed), 5)])
	}
	if o.ok < 200 || o.refused == 0 {
		t.Errorf("the load did not span the shutdown (%d ok, %d refused)", o.ok, o.refused)
	}
}

// rawGet makes one GET / on a new connection and returns the status, and
// whether the connection was established at all.
func rawGet(addr string) (status int, connected bool, err error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, true, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, true, err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, true, nil
}
