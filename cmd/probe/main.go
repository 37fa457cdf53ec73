// Command probe is curl for a multi-region service: it sends requests to the
// hello service, usually through its load balancer, and prints which regions
// answered, how often, how fast, and every error.
//
//	go run ./cmd/probe -url https://hello.example.com/ -n 200 -c 8
//	go run ./cmd/probe -url https://hello.example.com/ -expect-region europe-west1   # CI smoke test
//	go run ./cmd/probe -url http://localhost:8080/ -watch                         # one line a second
//
//	go run ./cmd/probe -url https://hello.example.com/ -route-header X-Hello-Canary \
//	    -expect-region us-east1,us-west1 -rate 2 -n 480 -max-error-ratio 0.05 -max-p99 500ms
//
// The last is the release pipeline's synthetic traffic (RELEASES.md): each request
// asks the load balancer's canary route for one region in turn; an answer from
// another region than the one asked for counts as a failed request, and each region
// must answer at least once.
//
// It exits 1 when more requests failed than -max-errors (or -max-error-ratio)
// allows, when an answer came from a region -expect-region does not list, when none
// of them answered (with -route-header: when one of them did not), or a region's p99
// latency passed -max-p99; 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/example/hello/internal/probe"
)

// errFailed is returned when the probe ran but its checks failed.
var errFailed = errors.New("checks failed")

func main() {
	err := run(context.Background(), os.Args, os.Stdout, os.Stderr, isTerminal(os.Stderr))
	switch {
	case err == nil:
	case errors.Is(err, errFailed):
		os.Exit(1)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, interactive bool) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	flags.SetOutput(stderr)
	var o probe.Options
	flags.StringVar(&o.URL, "url", "", "URL to probe, e.g. https://hello.example.com/ (required)")
	flags.IntVar(&o.Requests, "n", 200, "number of requests (not with -watch)")
	flags.IntVar(&o.Concurrency, "c", 8, "requests in flight at once")
	flags.Float64Var(&o.Rate, "rate", 0, "at most this many requests a second (0: as fast as -c allows)")
	flags.DurationVar(&o.Timeout, "timeout", probe.DefaultTimeout, "timeout of each request")
	expect := flags.String("expect-region", "", "comma-separated regions; fail if any answer comes from another, or none of them answers (with -route-header: if one of them does not)")
	flags.StringVar(&o.RouteHeader, "route-header", "", "send each request with this header naming one of -expect-region in turn; an answer from another region than the one named counts as a failed request")
	var want probe.Expect
	flags.IntVar(&want.MaxErrors, "max-errors", 0, "fail if more requests than this fail")
	flags.Float64Var(&want.MaxErrorRatio, "max-error-ratio", 0, "fail if more than this share of the requests fail (from 0 to below 1; replaces -max-errors)")
	flags.DurationVar(&want.MaxP99, "max-p99", 0, "fail if a region's 99th percentile latency is over this (0: no limit)")
	watch := flags.Bool("watch", false, "send requests until interrupted (or -duration) and print one line a second")
	duration := flags.Duration("duration", 0, "with -watch: stop after this long")
	asJSON := flags.Bool("json", false, "print JSON for machines (with -watch: one object a second)")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (the URL goes in -url)", flags.Arg(0))
	}
	if o.URL == "" {
		flags.Usage()
		return errors.New("-url is required")
	}
	if want.MaxErrors < 0 {
		return fmt.Errorf("-max-errors %d: want 0 or more", want.MaxErrors)
	}
	if want.MaxErrorRatio < 0 || want.MaxErrorRatio >= 1 {
		return fmt.Errorf("-max-error-ratio %v: want a share from 0 to below 1", want.MaxErrorRatio)
	}
	set := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["max-errors"] && set["max-error-ratio"] {
		return errors.New("-max-errors and -max-error-ratio: give one limit, not both")
	}
	if want.MaxP99 < 0 {
		return fmt.Errorf("-max-p99 %s: want 0 or more", want.MaxP99)
	}
	if *duration != 0 && !*watch {
		return errors.New("-duration goes with -watch")
	}
	if *expect != "" {
		for _, r := range strings.Split(*expect, ",") {
			if r = strings.TrimSpace(r); r != "" {
				want.Regions = append(want.Regions, r)
			}
		}
	}
	if o.RouteHeader != "" {
		o.Routes, want.EachRegion = want.Regions, true
	}
	if err := o.Validate(); err != nil {
		return err
	}

	var (
		res probe.Result
		err error
	)
	if *watch {
		if *duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *duration)
			defer cancel()
		}
		if !*asJSON {
			fmt.Fprintf(stderr, "watching %s with %d in flight; Ctrl-C stops\n", o.URL, o.Concurrency)
		}
		res, err = probe.Watch(ctx, o, time.Second, func(w probe.Window) {
			if *asJSON {
				probe.WriteJSON(stdout, w.Result, "", w.Start)
				return
			}
			fmt.Fprintln(stdout, probe.FormatWindow(w))
		})
		if err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(stdout, "\n%d requests to %s in %s\n\n", res.Requests, o.URL, res.Elapsed.Round(time.Millisecond))
			probe.WriteTable(stdout, res)
		}
	} else {
		progress := func(done, failed int) {
			if interactive {
				fmt.Fprintf(stderr, "\r%d/%d requests, %d errors", done, o.Requests, failed)
			}
		}
		res, err = probe.Run(ctx, o, 100*time.Millisecond, progress)
		if interactive {
			fmt.Fprint(stderr, "\r\033[K")
		}
		if err != nil && res.Requests == 0 {
			return err
		}
		if *asJSON {
			probe.WriteJSON(stdout, res, o.URL, time.Now())
		} else {
			fmt.Fprintf(stdout, "%d requests to %s in %s, %d at a time\n\n", res.Requests, o.URL, res.Elapsed.Round(time.Millisecond), o.Concurrency)
			probe.WriteTable(stdout, res)
		}
		if err != nil {
			fmt.Fprintf(stderr, "probe: %v\n", err)
			return errFailed
		}
	}
	failures := want.Failures(res)
	for _, f := range failures {
		fmt.Fprintf(stderr, "FAIL: %s\n", f)
	}
	if len(failures) > 0 {
		return errFailed
	}
	return nil
}

// isTerminal reports whether f is a terminal, where progress can be redrawn in place.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
