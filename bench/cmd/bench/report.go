package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// writeReport formats everything as BENCHMARKS.md.
func writeReport(servers []*server, slow slowResult, micro microResult, o options) string {
	by := map[string]*server{}
	for _, s := range servers {
		by[s.name] = s
	}
	hello, base, echo := by["hello"], by["baseline"], by["echo"]

	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\n")
	fmt.Fprintf(&b, "Written by `make bench` on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s.\n", machine())
	fmt.Fprintf(&b, "- Each server ran on CPU 0 with `GOMAXPROCS=1`; wrk and the latency generator ran on CPU 1.\n")
	fmt.Fprintf(&b, "- %d rounds. Each round measured every server once, in a rotating order; the table gives medians over the rounds.\n", o.rounds)
	fmt.Fprintf(&b, "- Servers: **hello** (this service, default configuration), **baseline** (bare `net/http.ServeMux` writing the same JSON bytes: the floor), **echo** (the 2020 design: echo v4 with AddTrailingSlash, Secure, CORS, BodyLimit 1M, Recover). All three were built as the image is (`-trimpath -tags=nethttpomithttp2 -ldflags=\"-s -w\"`, `CGO_ENABLED=0`).\n")
	if o.quick {
		fmt.Fprintf(&b, "- **A -quick run: too short for its figures to mean much.**\n")
	}
	fmt.Fprintf(&b, "\n| server | req/s | × baseline | CPU per request | p50 | p99 | p99.9 | start-up p50 | start-up max | RSS idle | RSS peak | binary |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range servers {
		m := s.m
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			s.name, median(m.reqPerSec), median(m.reqPerSec)/median(base.m.reqPerSec),
			us(median(m.cpuPerReq)),
			ms(median(pick(m.latency, func(l latency) time.Duration { return l.p50 }))),
			ms(median(pick(m.latency, func(l latency) time.Duration { return l.p99 }))),
			ms(median(pick(m.latency, func(l latency) time.Duration { return l.p999 }))),
			ms(median(m.startups)), ms(slices.Max(m.startups)),
			mib(median(m.rssIdle)), mib(slices.Max(m.rssPeak)), fmt.Sprintf("%d", s.size))
	}
	fmt.Fprintf(&b, "\n- req/s: closed loop, `wrk -t1 -c%d -d%s` on `GET /`. CPU per request: the server's utime+stime (`/proc/PID/stat`) over that run, divided by the requests served.\n", o.connections, o.duration)
	fmt.Fprintf(&b, "- p50/p99/p99.9: open loop at a fixed %d requests a second for %s (vegeta, keep-alive), exact percentiles of every answer.\n", o.rate, o.rateDuration)
	fmt.Fprintf(&b, "- start-up: exec to the first 200 on `/health/`, %d runs each, polled every 50 µs. RSS idle: just after start; RSS peak: `VmHWM` after the load, highest over the rounds.\n", o.startups)
	errs := 0
	for _, s := range servers {
		errs += s.m.wrkErrors + s.m.rateErrors
	}
	fmt.Fprintf(&b, "- Failed requests over all runs: %d.\n", errs)

	// Targets.
	helloCPU, baseCPU, echoCPU := median(hello.m.cpuPerReq), median(base.m.cpuPerReq), median(echo.m.cpuPerReq)
	cpuRatio := float64(baseCPU) / float64(helloCPU) // > 1: hello cheaper
	startRatio := float64(median(hello.m.startups)) / float64(median(base.m.startups))
	peak := slices.Max(hello.m.rssPeak)
	fmt.Fprintf(&b, "\n## Targets\n\n| target | measured | |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| throughput ≥ 0.95 × baseline (decided on CPU per request) | %.2f × (CPU %s vs %s; req/s %.2f ×) | %s |\n",
		cpuRatio, us(helloCPU), us(baseCPU), median(hello.m.reqPerSec)/median(base.m.reqPerSec), met(cpuRatio >= 0.95))
	fmt.Fprintf(&b, "| throughput ≥ echo design | CPU %s vs %s (req/s %.0f vs %.0f) | %s |\n",
		us(helloCPU), us(echoCPU), median(hello.m.reqPerSec), median(echo.m.reqPerSec), met(helloCPU <= echoCPU))
	fmt.Fprintf(&b, "| start-up p50 ≤ 1.25 × baseline and ≤ 10 ms | %s (%.2f × %s) | %s |\n",
		ms(median(hello.m.startups)), startRatio, ms(median(base.m.startups)), met(startRatio <= 1.25 && median(hello.m.startups) <= 10*time.Millisecond))
	ha, ba := micro.allocs["hello"], micro.allocs["baseline"]
	fmt.Fprintf(&b, "| allocations per `/` ≤ baseline + 3 | %.0f vs %.0f | %s |\n", ha, ba, met(ha <= ba+3))
	fmt.Fprintf(&b, "| peak RSS after the load ≤ 20 MiB | %s | %s |\n", mib(peak), met(peak <= 20<<20))
	loadedRatio := float64(slow.loaded.p99) / float64(slow.unloaded.p99)
	fmt.Fprintf(&b, "| slow clients: p99 within 2 × unloaded | %s vs %s (%.2f ×) with %d slowloris connections | %s |\n",
		ms(slow.loaded.p99), ms(slow.unloaded.p99), loadedRatio, slow.clients, met(loadedRatio <= 2 && slow.loadErr == 0))
	closedMedian := time.Duration(0)
	if len(slow.closedAfter) > 0 {
		closedMedian = slow.closedAfter[len(slow.closedAfter)/2]
	}
	fmt.Fprintf(&b, "| slow clients closed by `ReadHeaderTimeout` (5 s) | %d of %d, median %s after they opened | %s |\n",
		slow.closed, slow.clients, closedMedian.Round(10*time.Millisecond), met(slow.closed == slow.clients))

	fmt.Fprintf(&b, "\n## Reading\n\n")
	fmt.Fprintf(&b, "- The service costs %s of CPU per `GET /` where bare net/http costs %s (%+.0f%%): its read/write/header/idle timeouts, the drain listener, chi, the middleware and its security headers, none of which the baseline has (the README breaks the difference down). ",
		us(helloCPU), us(baseCPU), 100*(float64(helloCPU)/float64(baseCPU)-1))
	fmt.Fprintf(&b, "The echo design costs %s. Req/s (%.0f, %.0f, %.0f) moves from run to run on a shared machine; CPU per request is the steadier figure.\n",
		us(echoCPU), median(hello.m.reqPerSec), median(base.m.reqPerSec), median(echo.m.reqPerSec))
	fmt.Fprintf(&b, "- Below saturation, at %d req/s, latency is close for all three: p50 %s (hello), %s (baseline), %s (echo); p99 %s, %s, %s.\n", o.rate,
		ms(median(pick(hello.m.latency, func(l latency) time.Duration { return l.p50 }))),
		ms(median(pick(base.m.latency, func(l latency) time.Duration { return l.p50 }))),
		ms(median(pick(echo.m.latency, func(l latency) time.Duration { return l.p50 }))),
		ms(median(pick(hello.m.latency, func(l latency) time.Duration { return l.p99 }))),
		ms(median(pick(base.m.latency, func(l latency) time.Duration { return l.p99 }))),
		ms(median(pick(echo.m.latency, func(l latency) time.Duration { return l.p99 }))))
	fmt.Fprintf(&b, "- Start-up: %s vs %s. On Cloud Run the service also asks the metadata server for its region (up to 2 s when it does not answer), which this local run does not do.\n",
		ms(median(hello.m.startups)), ms(median(base.m.startups)))
	fmt.Fprintf(&b, "- %d connections sending their headers a byte a second moved the p99 of normal requests from %s to %s, and were cut off by `ReadHeaderTimeout`.\n",
		slow.clients, ms(slow.unloaded.p99), ms(slow.loaded.p99))

	fmt.Fprintf(&b, "\n## Micro-benchmarks\n\n`go test -bench BenchmarkRoot -benchmem` in the service's package: `GET /` through the whole handler (`newHandler`) against the baseline mux, without the network, compared with `benchstat -col /server`:\n\n```\n%s```\n", micro.benchstat)
	return b.String()
}

func pick[T any](xs []T, f func(T) time.Duration) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
