// Command faults runs the fault matrix: three instances of the service in network
// namespaces behind HAProxy, a steady open-loop load, and one fault at a time in
// the region that serves (SIGTERM, SIGKILL, SIGSTOP, a cut link, 300 ms of
// latency, 20 % packet loss), with the load balancer's retries on and then off.
// It prints each row as it goes and, unless -quick, writes FAILOVER.md. It exits
// 1 when a fault whose goal is zero lost a request with retries on.
//
//	sudo make faults          # the full matrix, about 4 minutes; writes FAILOVER.md
//	sudo make faults QUICK=1  # a few seconds a fault, for CI
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/example/hello/internal/faults"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	// SIGHUP too (the terminal closed), and SIGPIPE ignored (a pipe to head
	// closed), so that the run always ends by removing what it made.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	signal.Ignore(syscall.SIGPIPE)
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	binary := flags.String("binary", "bin/hello", "the hello server (make faults builds it)")
	toxiproxy := flags.String("toxiproxy", "bin/toxiproxy", "the toxiproxy server (make faults builds it)")
	quick := flags.Bool("quick", false, "a few seconds a fault, and no FAILOVER.md")
	rate := flags.Int("rate", 500, "requests a second")
	only := flags.String("faults", "", "comma-separated faults to run (default all: "+strings.Join(faults.Names(), ", ")+")")
	out := flags.String("out", "FAILOVER.md", "where the full run writes its report")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if err := faults.Requirements(); err != nil {
		return err
	}
	for _, f := range []string{*binary, *toxiproxy} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w (make faults builds it)", err)
		}
	}
	if *rate < 1 {
		return fmt.Errorf("-rate %d: want at least 1 request a second", *rate)
	}
	dir, err := os.MkdirTemp("", "faults")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	o := faults.Options{
		Binary: *binary, Toxiproxy: *toxiproxy,
		Regions: faults.DefaultRegions(),
		Rate:    *rate,
		Before:  3 * time.Second, During: 6 * time.Second, After: 5 * time.Second,
		Dir: dir, Out: stdout,
	}
	if *quick {
		o.Before, o.During, o.After = time.Second, 3*time.Second, 3*time.Second
	}
	if *only != "" {
		o.Faults = strings.Split(*only, ",")
	}
	started := time.Now()
	rows, err := faults.Run(ctx, o)
	if ctx.Err() != nil {
		if left, err := faults.Leftovers(); err != nil || len(left) > 0 {
			return fmt.Errorf("interrupted, and could not remove %v (%v)", left, err)
		}
		return errors.New("interrupted; everything the run made was removed")
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	faults.WriteTable(stdout, rows)
	if !*quick {
		if err := writeReport(*out, o, rows, started); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", *out)
	}
	if missed := faults.Failed(rows); len(missed) > 0 {
		var names []string
		for _, r := range missed {
			names = append(names, fmt.Sprintf("%s (%d failed)", r.Fault.Name, r.Failed))
		}
		return fmt.Errorf("requests failed with retries on, where the goal is none: %s", strings.Join(names, ", "))
	}
	fmt.Fprintln(stdout, "\nno request failed with retries on in any fault whose goal is zero.")
	return nil
}

// The report goes between these markers in FAILOVER.md, so that the text
// around it is written by hand and kept.
const (
	beginMarker = "<!-- make faults: begin -->"
	endMarker   = "<!-- make faults: end -->"
)

// writeReport writes the measured matrix, with what it ran on, into path.
func writeReport(path string, o faults.Options, rows []faults.Row, started time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n<!-- Written by `make faults` (cmd/faults); edit the text outside the markers. -->\n\n", beginMarker)
	fmt.Fprintf(&b, "Run on %s: Linux %s, %d cores, %s, %s, toxiproxy %s.\n",
		started.UTC().Format("2006-01-02 15:04 MST"), firstLine("uname", "-r"), runtime.NumCPU(), runtime.Version(),
		firstLine("haproxy", "-v"), firstLine(o.Toxiproxy, "-version"))
	fmt.Fprintf(&b, "Load: %d requests a second, open loop, keep-alive clients. Each fault is injected %s into the load\n", o.Rate, o.Before)
	fmt.Fprintf(&b, "and healed %s later; the load goes on %s more. Latencies are those of the requests sent during the\n", o.During, o.After)
	fmt.Fprintf(&b, "fault that were answered; failures count the whole row.\n\n")
	faults.WriteFaults(&b)
	fmt.Fprintln(&b)
	faults.WriteTable(&b, rows)
	fmt.Fprintf(&b, "\nHAProxy's configuration with retries on (with retries off, the three retry lines become `retries 0`):\n\n```\n%s```\n%s\n", faults.ExampleConfig(true), endMarker)

	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	i, j := strings.Index(text, beginMarker), strings.Index(text, endMarker)
	if i < 0 || j < i {
		text = "# Failover under faults\n\n" + b.String()
	} else {
		text = text[:i] + b.String() + strings.TrimPrefix(text[j+len(endMarker):], "\n")
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// firstLine returns the first line a command prints, or "unknown".
func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
