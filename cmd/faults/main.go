// Command faults runs the fault matrix: three instances of the service in network
// namespaces behind HAProxy, a steady open-loop load, and one fault at a time in
// the region that serves (SIGTERM, SIGKILL, SIGSTOP, a cut link, 300 ms of
// latency, 20 % packet loss), with the load balancer's retries on and then off;
// then releases of a good and of two bad versions, through the release pipeline
// and all at once. It prints each row as it goes and, unless -quick, writes
// FAILOVER.md and RELEASES.md. It exits 1 when a row misses its goal.
//
//	sudo make faults          # everything, about 6 minutes; writes FAILOVER.md and RELEASES.md
//	sudo make faults QUICK=1  # a few seconds a fault, the same release rows; for CI
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
	only := flags.String("faults", "", "comma-separated faults to run, or none (default all: "+strings.Join(faults.Names(), ", ")+")")
	releases := flags.String("releases", "", "comma-separated release rows to run, or none (default all: "+strings.Join(faults.ReleaseIDs(), ", ")+")")
	source := flags.String("source", ".", "the service's source, from which the bad releases are built")
	out := flags.String("out", "FAILOVER.md", "where the full run writes the faults' report")
	releasesOut := flags.String("releases-out", "RELEASES.md", "where the full run writes the releases' report")
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
	if *releases != "" {
		o.Releases = strings.Split(*releases, ",")
	}
	o.Source = *source
	started := time.Now()
	res, err := faults.Run(ctx, o)
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
	if len(res.Faults) > 0 {
		faults.WriteTable(stdout, res.Faults)
	}
	if len(res.Releases) > 0 {
		fmt.Fprintln(stdout)
		faults.WriteReleaseTable(stdout, res.Releases)
	}
	if !*quick {
		if len(res.Faults) > 0 {
			if err := writeReport(*out, "Failover under faults", faultsReport(o, res.Faults, started)); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "\nwrote %s\n", *out)
		}
		if len(res.Releases) > 0 {
			if err := writeReport(*releasesOut, "Releases", releasesReport(o, res.Releases, started)); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "\nwrote %s\n", *releasesOut)
		}
	}
	var missed []string
	for _, r := range faults.Failed(res.Faults) {
		missed = append(missed, fmt.Sprintf("%s (%d failed with retries on)", r.Fault.Name, r.Failed))
	}
	for _, r := range faults.FailedReleases(res.Releases) {
		missed = append(missed, fmt.Sprintf("%s (%s)", r.Release.ID, faults.MissedRelease(r)))
	}
	if len(missed) > 0 {
		return fmt.Errorf("goals missed: %s", strings.Join(missed, ", "))
	}
	fmt.Fprintln(stdout, "\nevery goal met: no request failed with retries on in any fault whose goal is zero, and every release row met its goal.")
	return nil
}

// The report goes between these markers in FAILOVER.md, so that the text
// around it is written by hand and kept.
const (
	beginMarker = "<!-- make faults: begin -->"
	endMarker   = "<!-- make faults: end -->"
)

// machine says what a run ran on.
func machine(o faults.Options, started time.Time) string {
	return fmt.Sprintf("Run on %s: Linux %s, %d cores, %s, %s, toxiproxy %s.\n",
		started.UTC().Format("2006-01-02 15:04 MST"), firstLine("uname", "-r"), runtime.NumCPU(), runtime.Version(),
		firstLine("haproxy", "-v"), firstLine(o.Toxiproxy, "-version"))
}

// faultsReport is the measured matrix, with what it ran on.
func faultsReport(o faults.Options, rows []faults.Row, started time.Time) string {
	var b strings.Builder
	b.WriteString(machine(o, started))
	fmt.Fprintf(&b, "Load: %d requests a second, open loop, keep-alive clients. Each fault is injected %s into the load\n", o.Rate, o.Before)
	fmt.Fprintf(&b, "and healed %s later; the load goes on %s more. Latencies are those of the requests sent during the\n", o.During, o.After)
	fmt.Fprintf(&b, "fault that were answered; failures count the whole row.\n")
	fmt.Fprintf(&b, "Objectives (monitoring.tf): %s; every window divided by %d here.\n\n", faults.DefaultObjectives(), faults.ReleaseTimeScale)
	faults.WriteFaults(&b)
	fmt.Fprintln(&b)
	faults.WriteTable(&b, rows)
	fmt.Fprintf(&b, "\nHAProxy's configuration with retries on (with retries off, the three retry lines become `retries 0`):\n\n```\n%s```\n", faults.ExampleConfig(true))
	return b.String()
}

// releasesReport is the measured release rows, with what they ran on.
func releasesReport(o faults.Options, rows []faults.ReleaseRow, started time.Time) string {
	var b strings.Builder
	b.WriteString(machine(o, started))
	p := faults.ReleasePolicy()
	fmt.Fprintf(&b, "Load: %d requests a second, open loop, 1/%d from the clients near each region (%s; the canary is %s).\n",
		o.Rate, len(o.Regions), strings.Join(o.Regions, ", "), o.Regions[0])
	fmt.Fprintf(&b, "Policy: %s.\n", p)
	fmt.Fprintf(&b, "Every duration divided by %d: %s.\n", faults.ReleaseTimeScale, p.Scaled(faults.ReleaseTimeScale))
	fmt.Fprintf(&b, "Sent and failed count the requests sent from the release's start to the end of its rollback (or of its\n")
	fmt.Fprintf(&b, "last step); an answer later than %s counts as failed. Detection is timed from the new revision's first\n", p.Latency)
	fmt.Fprintf(&b, "traffic; its 2 s of latency, for the slow release, are not scaled.\n")
	fmt.Fprintf(&b, "Objectives (monitoring.tf): %s; every window divided by %d here.\n\n", faults.DefaultObjectives(), faults.ReleaseTimeScale)
	faults.WriteReleases(&b)
	fmt.Fprintln(&b)
	faults.WriteReleaseTable(&b, rows)
	return b.String()
}

// writeReport writes report between the markers in path, keeping the text
// around them. A file without markers keeps all its text and gets the report at
// its end; a file that does not exist is made, with title.
func writeReport(path, title, report string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n<!-- Written by `make faults` (cmd/faults); edit the text outside the markers. -->\n\n%s%s\n", beginMarker, report, endMarker)
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	i, j := strings.Index(text, beginMarker), strings.Index(text, endMarker)
	switch {
	case len(old) == 0:
		text = "# " + title + "\n\n" + b.String()
	case i < 0 || j < i:
		text = strings.TrimRight(text, "\n") + "\n\n" + b.String()
	default:
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
