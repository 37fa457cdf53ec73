package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// writeReport formats everything as BENCHMARKS.md.
func writeReport(servers []*server, shapes []*shape, slow slowResult, micro microResult, o options) string {
	by := map[string]*server{}
	for _, s := range servers {
		by[s.name] = s
	}
	hello, well, base, echo := by["hello"], by["wellwritten"], by["baseline"], by["echo"]
	var before *server
	if o.before != "" {
		before = by["hello@"+o.before]
	}
	helloCPU, wellCPU, baseCPU, echoCPU := median(hello.m.cpuPerReq), median(well.m.cpuPerReq), median(base.m.cpuPerReq), median(echo.m.cpuPerReq)
	ratios := roundRatios(hello, well)

	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\n")
	fmt.Fprintf(&b, "Written by `make bench` on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s.\n", machine())
	fmt.Fprintf(&b, "- Each server ran on CPU 0 with `GOMAXPROCS=1`; wrk and the latency generator ran on CPU 1.\n")
	fmt.Fprintf(&b, "- %d rounds. Each round measured every server once, in a rotating order; the table gives medians over the rounds.\n", o.rounds)
	fmt.Fprintf(&b, "- Servers: **hello** (this service, default configuration); **wellwritten** (the yardstick, with the service's protections: the same two endpoints on a bare `net/http.ServeMux`, the same JSON bytes with the same four headers, `Content-Type`, `Cache-Control`, `X-Content-Type-Options` and `Content-Security-Policy`, set with `Header().Set`, and the same `http.Server` limits, `ReadHeaderTimeout`, `ReadTimeout`, `WriteTimeout`, `IdleTimeout` and `MaxHeaderBytes`; `bench/wellwritten`); **wellwritten-notimeouts** (the same without the four timeouts: measured only to say what they cost); **baseline** (bare `net/http.ServeMux` writing the same JSON bytes with only `Content-Type`: the floor); **echo** (the 2020 design: echo v4 with AddTrailingSlash, Secure, CORS, BodyLimit 1M, Recover)")
	if before != nil {
		fmt.Fprintf(&b, "; **%s** (this service as it was at `%s`)", before.name, o.before)
	}
	fmt.Fprintf(&b, ". All were built as the image is (`-trimpath -tags=nethttpomithttp2 -ldflags=\"-s -w\"`, `CGO_ENABLED=0`).\n")
	if o.quick {
		fmt.Fprintf(&b, "- **A -quick run: too short for its figures to mean much.**\n")
	}
	fmt.Fprintf(&b, "\n| server | req/s | CPU per request | × wellwritten | × baseline | p50 | p99 | p99.9 | start-up p50 | start-up max | RSS idle | RSS peak | binary |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range servers {
		m := s.m
		fmt.Fprintf(&b, "| %s | %.0f | %s | %.3f | %.2f | %s | %s | %s | %s | %s | %s | %s | %d |\n",
			s.name, median(m.reqPerSec), us(median(m.cpuPerReq)),
			median(roundRatios(s, well)), float64(median(m.cpuPerReq))/float64(baseCPU),
			ms(median(pick(m.latency, func(l latency) time.Duration { return l.p50 }))),
			ms(median(pick(m.latency, func(l latency) time.Duration { return l.p99 }))),
			ms(median(pick(m.latency, func(l latency) time.Duration { return l.p999 }))),
			ms(median(m.startups)), ms(slices.Max(m.startups)),
			mib(median(m.rssIdle)), mib(slices.Max(m.rssPeak)), s.size)
	}
	fmt.Fprintf(&b, "\n- req/s: closed loop, `wrk -t1 -c%d -d%s` on `GET /`. CPU per request: the CPU time of the server's threads (`/proc/PID/task/*/schedstat`) over that run, divided by the requests served.\n", o.connections, o.duration)
	fmt.Fprintf(&b, "- × wellwritten: the median, over the rounds, of each round's CPU per request divided by wellwritten's in the same round. Pairing by round takes out most of the drift of a shared machine. × baseline: the ratio of the medians.\n")
	fmt.Fprintf(&b, "- hello ÷ wellwritten, round by round: %s.\n", joinRatios(ratios))
	fmt.Fprintf(&b, "- p50/p99/p99.9: open loop at a fixed %d requests a second for %s (vegeta, keep-alive), exact percentiles of every answer.\n", o.rate, o.rateDuration)
	fmt.Fprintf(&b, "- start-up: exec to the first 200 on `/health/`, %d runs each, polled every 50 µs. RSS idle: just after start; RSS peak: `VmHWM` after the load, highest over the rounds.\n", o.startups)
	errs := 0
	for _, s := range servers {
		errs += s.m.wrkErrors + s.m.rateErrors
	}
	fmt.Fprintf(&b, "- Failed requests over all runs: %d.\n", errs)

	// Targets.
	ratio := median(ratios)
	startRatio := float64(median(hello.m.startups)) / float64(median(base.m.startups))
	peak := slices.Max(hello.m.rssPeak)
	fmt.Fprintf(&b, "\n## Targets\n\n| target | measured | |\n|---|---|---|\n")
	verdict := met(ratio <= 1.0)
	if ratio > 1.0 && ratio <= 1.05 {
		verdict = "within 1.05 (the aim is 1.0)"
	}
	fmt.Fprintf(&b, "| CPU per request ≤ 1.0 × wellwritten (at most 1.05) | %.3f × (%s vs %s; rounds %.3f to %.3f) | %s |\n",
		ratio, us(helloCPU), us(wellCPU), slices.Min(ratios), slices.Max(ratios), verdict)
	ha, wa := micro.allocs["hello"], micro.allocs["wellwritten"]
	fmt.Fprintf(&b, "| allocations per `/` ≤ wellwritten + 1 | %.0f vs %.0f | %s |\n", ha, wa, met(ha <= wa+1))
	fmt.Fprintf(&b, "| CPU per request ≤ echo design | %s vs %s | %s |\n", us(helloCPU), us(echoCPU), met(helloCPU <= echoCPU))
	cpuRatio := float64(baseCPU) / float64(helloCPU) // > 1: hello cheaper
	fmt.Fprintf(&b, "| throughput ≥ 0.95 × baseline (decided on CPU per request) | %.2f × (%s vs %s) | %s |\n",
		cpuRatio, us(helloCPU), us(baseCPU), met(cpuRatio >= 0.95))
	fmt.Fprintf(&b, "| start-up p50 ≤ 1.25 × baseline and ≤ 10 ms | %s (%.2f × %s) | %s |\n",
		ms(median(hello.m.startups)), startRatio, ms(median(base.m.startups)), met(startRatio <= 1.25 && median(hello.m.startups) <= 10*time.Millisecond))
	if before != nil {
		// Start-up and peak RSS move by several per cent between runs of the
		// same binary; the verdict says so rather than flip on noise.
		bs, hs := median(before.m.startups), median(hello.m.startups)
		fmt.Fprintf(&b, "| start-up p50 within 5 %% of %s | %s vs %s (%+.1f %%) | %s |\n", before.name, ms(hs), ms(bs), 100*(float64(hs)/float64(bs)-1), noWorse(float64(hs), float64(bs)))
		hp, bp := median(hello.m.rssPeak), median(before.m.rssPeak)
		fmt.Fprintf(&b, "| peak RSS (median over the rounds) within 5 %% of %s | %s vs %s (%+.1f %%) | %s |\n", before.name, mib(hp), mib(bp), 100*(float64(hp)/float64(bp)-1), noWorse(float64(hp), float64(bp)))
		fmt.Fprintf(&b, "| binary within 5 %% of %s | %d vs %d bytes (%+.1f %%) | %s |\n", before.name, hello.size, before.size, 100*(float64(hello.size)/float64(before.size)-1), noWorse(float64(hello.size), float64(before.size)))
	}
	for _, sh := range shapes {
		base := sh.baseline()
		for _, v := range sh.variants {
			if v.stub == nil || v.server != hello || len(v.first) == 0 || len(base.first) == 0 {
				continue
			}
			r := float64(percentile(v.first, 50)) / float64(percentile(base.first, 50))
			fmt.Fprintf(&b, "| Cloud Run-shaped start-up p50 ≤ 1.1 × baseline: %s, metadata server %s | %s vs %s (%.2f ×) | %s |\n",
				sh.name, v.stub.name, ms(percentile(v.first, 50)), ms(percentile(base.first, 50)), r, met(r <= 1.1))
		}
	}
	// The same, against the baseline as large as hello: what the service does at
	// start, without the read of its larger binary. The slowest hello row of each shape.
	for _, sh := range shapes {
		sized := sh.sized()
		if sized == nil || len(sized.first) == 0 {
			continue
		}
		var worst *variant
		for _, v := range sh.variants {
			if v.stub != nil && v.server == hello && len(v.first) > 0 && (worst == nil || percentile(v.first, 50) > percentile(worst.first, 50)) {
				worst = v
			}
		}
		if worst == nil {
			continue
		}
		r := float64(percentile(worst.first, 50)) / float64(percentile(sized.first, 50))
		fmt.Fprintf(&b, "| Cloud Run-shaped start-up p50 ≤ 1.1 × the baseline padded to hello's size: %s, the slowest (metadata server %s) | %s vs %s (%.2f ×) | %s |\n",
			sh.name, worst.stub.name, ms(percentile(worst.first, 50)), ms(percentile(sized.first, 50)), r, met(r <= 1.1))
	}
	fmt.Fprintf(&b, "| peak RSS after the load ≤ 20 MiB | %s | %s |\n", mib(peak), met(peak <= 20<<20))
	loadedRatio := float64(slow.loaded.p99) / float64(slow.unloaded.p99)
	fmt.Fprintf(&b, "| slow clients: p99 within 2 × unloaded | %s vs %s (%.2f ×) with %d slowloris connections | %s |\n",
		ms(slow.loaded.p99), ms(slow.unloaded.p99), loadedRatio, slow.clients, met(loadedRatio <= 2 && slow.loadErr == 0))
	closedMedian := time.Duration(0)
	if len(slow.closedAfter) > 0 {
		closedMedian = slow.closedAfter[len(slow.closedAfter)/2]
	}
	fmt.Fprintf(&b, "| slow clients closed by the header limit (5 s) | %d of %d, median %s after they opened | %s |\n",
		slow.closed, slow.clients, closedMedian.Round(10*time.Millisecond), met(slow.closed == slow.clients))

	fmt.Fprintf(&b, "\n## Reading\n\n")
	fmt.Fprintf(&b, "- The service costs %s of CPU per `GET /` where the well-written net/http service costs %s (%.3f ×, paired by round) and bare net/http %s. With the same limits and headers on both, the difference is chi and the middleware: the layer-by-layer table below says what each costs. ",
		us(helloCPU), us(wellCPU), ratio, us(baseCPU))
	fmt.Fprintf(&b, "The echo design costs %s. Req/s moves from run to run on a shared machine; CPU per request is the steadier figure.\n", us(echoCPU))
	if bare := by["wellwritten-notimeouts"]; bare != nil {
		tr := roundRatios(well, bare)
		fmt.Fprintf(&b, "- What `http.Server`'s four timeouts cost: wellwritten ÷ wellwritten-notimeouts (the same server with them unset, which protects nothing and is measured only for this), paired by round: %.3f × (rounds %.3f to %.3f). The service pays the same.\n",
			median(tr), slices.Min(tr), slices.Max(tr))
	}
	fmt.Fprintf(&b, "- Below saturation, at %d req/s, latency is close for all: p50 %s (hello), %s (wellwritten), %s (baseline), %s (echo); p99 %s, %s, %s, %s.\n", o.rate,
		ms(median(pick(hello.m.latency, func(l latency) time.Duration { return l.p50 }))),
		ms(median(pick(well.m.latency, func(l latency) time.Duration { return l.p50 }))),
		ms(median(pick(base.m.latency, func(l latency) time.Duration { return l.p50 }))),
		ms(median(pick(echo.m.latency, func(l latency) time.Duration { return l.p50 }))),
		ms(median(pick(hello.m.latency, func(l latency) time.Duration { return l.p99 }))),
		ms(median(pick(well.m.latency, func(l latency) time.Duration { return l.p99 }))),
		ms(median(pick(base.m.latency, func(l latency) time.Duration { return l.p99 }))),
		ms(median(pick(echo.m.latency, func(l latency) time.Duration { return l.p99 }))))
	fmt.Fprintf(&b, "- Start-up: %s vs %s (baseline) on the local path (no `K_SERVICE`); the next section starts them as Cloud Run does.\n",
		ms(median(hello.m.startups)), ms(median(base.m.startups)))
	fmt.Fprintf(&b, "- %d connections sending their headers a byte a second moved the p99 of normal requests from %s to %s, and were cut off by the service's header limit.\n",
		slow.clients, ms(slow.unloaded.p99), ms(slow.loaded.p99))

	writeShapedStartups(&b, shapes, o)
	writeCost(&b, helloCPU, coldStart(shapes, hello))

	fmt.Fprintf(&b, "\n## Micro-benchmarks\n\n`go test -bench BenchmarkRoot -benchmem`: `GET /` through the service's whole handler (`newHandler`), the well-written service's mux and the baseline mux, without the network, compared with `benchstat -col /server`:\n\n```\n%s```\n", micro.benchstat)
	fmt.Fprintf(&b, "\n### Layer by layer\n\n`BenchmarkLayers`: `GET /` through chi and the routes alone, then with each of `newHandler`'s middlewares added in turn, outermost first (median of the counts; in-process, without net/http's own work, which is the same for every server). What the service costs beyond the well-written one is these layers.\n\n")
	fmt.Fprintf(&b, "| layers | ns/op | added by this layer | B/op | allocs/op |\n|---|---:|---:|---:|---:|\n")
	prev := 0.0
	for i, l := range micro.layers {
		added := "–"
		if i > 0 {
			added = fmt.Sprintf("%+.0f ns", l.nsPerOp-prev)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %.0f | %.0f |\n", l.name, l.nsPerOp, added, l.bytesPerOp, l.allocsPerOp)
		prev = l.nsPerOp
	}
	return b.String()
}

// roundRatios returns s's CPU per request divided by ref's, round by round.
func roundRatios(s, ref *server) []float64 {
	out := make([]float64, 0, len(s.m.cpuPerReq))
	for i := range min(len(s.m.cpuPerReq), len(ref.m.cpuPerReq)) {
		out = append(out, float64(s.m.cpuPerReq[i])/float64(ref.m.cpuPerReq[i]))
	}
	return out
}

func joinRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.3f", r)
	}
	return strings.Join(parts, ", ")
}

func pick[T any](xs []T, f func(T) time.Duration) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// noWorse judges a figure against the same figure before a change: the
// targets allow it 5 % more, which is also about how far start-up and peak RSS
// move between runs of the same binary.
func noWorse(now, before float64) string {
	switch {
	case now <= before:
		return "met"
	case now <= 1.05*before:
		return "met (≤ +5 %)"
	}
	return "**worse**"
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func us(d time.Duration) string { return fmt.Sprintf("%.2f µs", float64(d)/float64(time.Microsecond)) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// writeShapedStartups is the section on start-ups as Cloud Run shapes them.
func writeShapedStartups(b *strings.Builder, shapes []*shape, o options) {
	fmt.Fprintf(b, "\n## Start-up as Cloud Run starts it\n\n")
	fmt.Fprintf(b, "Exec to the first accepted connection (what a TCP startup probe sees) and to the first 200 on `/` (an HTTP probe), %d starts of each row, in rounds with a rotating order so that each hello row is paired with the baseline. "+
		"Each start: `K_SERVICE`, `K_REVISION` and `REGION` set, a metadata server on loopback (`GCE_METADATA_HOST`) that answers at once, after 500 ms, or accepts and never answers; "+
		"a cgroup of 1 CPU (`cpu.cfs_quota_us` = period) and 256 MiB, the deploy's limits, with `GOMAXPROCS` unset (the runtime reads the quota); the binary's pages dropped from the page cache first (written back, `fadvise(DONTNEED)`, then checked with `mincore`: none is left). "+
		"The image rows unpack `make image`'s OCI layout with umoci, add the baselines' binaries beside hello's, and run each start as its own container: `create` (the sandbox) untimed, the clock from `start`. "+
		"The padded baseline is the baseline built with a string constant it never reads, which makes its binary as large as hello's: the same start, with as many bytes to read from disk, so that the last column is what the service does at start beyond its size.\n\n", o.shapedStartups)
	fmt.Fprintf(b, "| shape | server, metadata server | starts | accept p50 | accept p99 | accept max | first 200 p50 | first 200 p99 | first 200 max | × baseline (p50) | × padded baseline (p50) |\n")
	fmt.Fprintf(b, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, sh := range shapes {
		if sh.err != nil {
			fmt.Fprintf(b, "| %s | not measured: %s | | | | | | | | | |\n", sh.name, strings.ReplaceAll(strings.TrimSpace(sh.err.Error()), "\n", " "))
			continue
		}
		base := percentile(sh.baseline().first, 50)
		for _, v := range sh.variants {
			bySize := "–"
			if sized := sh.sized(); sized != nil {
				bySize = fmt.Sprintf("%.2f", float64(percentile(v.first, 50))/float64(percentile(sized.first, 50)))
			}
			fmt.Fprintf(b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %.2f | %s |\n", sh.name, v.name, len(v.first),
				ms(percentile(v.accept, 50)), ms(percentile(v.accept, 99)), ms(slices.Max(v.accept)),
				ms(percentile(v.first, 50)), ms(percentile(v.first, 99)), ms(slices.Max(v.first)),
				float64(percentile(v.first, 50))/float64(base), bySize)
		}
	}
	fmt.Fprintf(b, "\nWhat this reproduces of Cloud Run's start and what it cannot: docs/testing.md, \"Start-up as Cloud Run starts it\".\n")
}

// coldStart is hello's p50 start in the image under runc with a metadata server
// that answers at once, or in the first shape measured if that one was not.
func coldStart(shapes []*shape, hello *server) time.Duration {
	var found time.Duration
	for _, sh := range shapes {
		for _, v := range sh.variants {
			if v.server == hello && v.stub != nil && v.stub.delay == 0 && !v.stub.never && len(v.first) > 0 && sh.err == nil {
				if found == 0 || strings.Contains(sh.name, "runc") {
					found = percentile(v.first, 50)
				}
			}
		}
	}
	return found
}
