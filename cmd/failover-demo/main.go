// Command failover-demo runs three instances of the service behind HAProxy, one
// per region, sends SIGTERM to the primary and prints, second by second, the
// answers moving to the next region. `make failover-demo` builds the server and
// runs it.
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

	"github.com/example/hello/internal/failover"
	"github.com/example/hello/internal/probe"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "failover-demo: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	binary := flags.String("binary", "bin/hello", "the hello server to run (make failover-demo builds it)")
	regions := flags.String("regions", strings.Join(failover.DefaultRegions(), ","), "regions, primary first")
	delay := flags.Duration("shutdown-delay", 2*time.Second, "the primary's SHUTDOWN_DELAY")
	before := flags.Duration("before", 3*time.Second, "probe this long before SIGTERM")
	after := flags.Duration("after", 3*time.Second, "probe this long after the primary exits")
	rate := flags.Float64("rate", 200, "probe requests a second")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "failover-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	rep, err := failover.Run(ctx, failover.Options{
		Binary:        *binary,
		Regions:       strings.Split(*regions, ","),
		ShutdownDelay: *delay,
		Before:        *before,
		After:         *after,
		Rate:          *rate,
		Out:           stdout,
	}, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d requests through the load balancer in %s\n\n", rep.Probe.Requests, rep.Probe.Elapsed.Round(time.Millisecond))
	probe.WriteTable(stdout, rep.Probe)

	var problems []string
	if rep.Probe.Errors > 0 {
		problems = append(problems, fmt.Sprintf("%d requests failed", rep.Probe.Errors))
	}
	if rep.PrimaryExit != nil {
		problems = append(problems, fmt.Sprintf("the primary ended with %v, want status 0", rep.PrimaryExit))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	fmt.Fprintln(stdout, "\nno request failed, and the primary exited with status 0.")
	return nil
}
