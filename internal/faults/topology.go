package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Prefix names everything the harness creates on the host: network namespaces,
// the bridge and the host ends of the veth pairs. Cleanup removes whatever
// carries it, also what an earlier run that was killed left behind.
const Prefix = "hellofault"

// subnet is the bridge's network. Its addresses exist only on the bridge and in
// the namespaces the harness makes; nothing else is ever sent traffic.
const (
	subnet     = "10.213.0"
	bridgeName = Prefix + "-br"
	regionPort = 8080
)

// region is a region of the service: a network namespace of its own, with the
// instance that serves (the fault matrix's, and a release's old revision) and,
// during a release, the new revision's instance beside it.
type region struct {
	name string
	ns   string // network namespace
	veth string // host end of the veth pair, on the bridge
	addr string // the instances' address on the bridge

	instance           // the serving instance, on regionPort
	next     *instance // a release's new revision, on nextPort; nil between releases
}

// instance is one process of the service in a region's namespace.
type instance struct {
	mu      sync.Mutex
	cmd     *exec.Cmd
	logs    *bytes.Buffer
	exited  chan struct{}
	exitErr error
}

// Requirements returns what is missing for the harness to run, or nil: it needs
// root (for namespaces) and the programs it calls.
func Requirements() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces need CAP_NET_ADMIN: run it with sudo)")
	}
	for _, p := range []struct{ name, pkg string }{{"ip", "iproute2"}, {"nft", "nftables"}, {"haproxy", "haproxy"}} {
		if _, err := exec.LookPath(p.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian: apt-get install %s)", p.name, p.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cannot run the fault matrix; missing: %s", strings.Join(missing, "; "))
	}
	return nil
}

// ip runs ip(8) with args.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// setUp creates the bridge and one namespace per region, each joined to the
// bridge by a veth pair, and returns the regions (none started yet).
func setUp(ctx context.Context, names []string) ([]*region, error) {
	if err := Cleanup(); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"link", "add", bridgeName, "type", "bridge"},
		{"addr", "add", subnet + ".1/24", "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	}
	var regions []*region
	for i, name := range names {
		r := &region{
			name: name,
			ns:   fmt.Sprintf("%s-r%d", Prefix, i),
			veth: fmt.Sprintf("%s-r%d", Prefix, i),
			addr: fmt.Sprintf("%s.%d", subnet, 11+i),
		}
		regions = append(regions, r)
		steps = append(steps,
			[]string{"netns", "add", r.ns},
			[]string{"link", "add", r.veth, "type", "veth", "peer", "name", "eth0", "netns", r.ns},
			[]string{"link", "set", r.veth, "master", bridgeName, "up"},
			[]string{"-n", r.ns, "addr", "add", r.addr + "/24", "dev", "eth0"},
			[]string{"-n", r.ns, "link", "set", "eth0", "up"},
			[]string{"-n", r.ns, "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return nil, errors.Join(err, Cleanup())
		}
	}
	return regions, nil
}

// Cleanup removes every link and namespace whose name starts with Prefix.
// Links go first: deleting a veth deletes its peer, and the kernel destroys a
// deleted namespace's devices only later, in the background. Deleting a
// namespace kills nothing by itself: the processes of a run that was killed
// before it could stop them are killed here.
func Cleanup() error {
	links, namespaces, err := prefixed()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range links {
		if err := ip(context.Background(), "link", "del", name); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
	}
	for _, name := range namespaces {
		pids, _ := exec.Command("ip", "netns", "pids", name).Output()
		for _, pid := range strings.Fields(string(pids)) {
			if n, err := strconv.Atoi(pid); err == nil {
				syscall.Kill(n, syscall.SIGKILL)
			}
		}
		if err := ip(context.Background(), "netns", "del", name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists the links and namespaces named with Prefix that exist now.
func Leftovers() ([]string, error) {
	links, namespaces, err := prefixed()
	return append(links, namespaces...), err
}

// prefixed returns the links and the namespaces whose names start with Prefix.
func prefixed() (links, namespaces []string, err error) {
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("ip link show: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		// "7: hellofault-br: <...>" or "8: hellofault-r0@if2: <...>"
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(fields[1], ":"), "@")
		if strings.HasPrefix(name, Prefix+"-") {
			links = append(links, name)
		}
	}
	out, err = exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("ip netns list: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		// "hellofault-r0 (id: 3)"
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if strings.HasPrefix(name, Prefix+"-") {
			namespaces = append(namespaces, name)
		}
	}
	return links, namespaces, nil
}

// start runs binary as the region's serving instance, with SHUTDOWN_DELAY delay,
// and waits until it answers /health/.
func (r *region) start(ctx context.Context, binary string, delay time.Duration) error {
	return r.instance.start(ctx, r, binary, regionPort, []string{"SHUTDOWN_DELAY=" + delay.String()})
}

// start runs binary in r's namespace on port with env added to the service's
// settings, and waits until it answers /health/.
func (in *instance) start(ctx context.Context, r *region, binary string, port int, env []string) error {
	in.mu.Lock()
	in.logs = new(bytes.Buffer)
	in.exited = make(chan struct{})
	in.exitErr = nil
	// ip netns exec enters the namespace and then executes the binary, so the
	// process that signals reach is the service itself.
	cmd := exec.Command("ip", "netns", "exec", r.ns, binary)
	cmd.Env = append([]string{
		fmt.Sprintf("PORT=%d", port),
		"REGION=" + r.name,
		"SHUTDOWN_TIMEOUT=5s",
	}, env...)
	cmd.Stdout, cmd.Stderr = &lockedBuffer{b: in.logs, mu: &in.mu}, &lockedBuffer{b: in.logs, mu: &in.mu}
	// Its own process group, so that a Ctrl-C at the terminal reaches the
	// harness alone, which then stops every instance itself; and killed by the
	// kernel if the harness dies without doing so (SIGKILL, say).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		in.mu.Unlock()
		return fmt.Errorf("starting %s in %s: %w", binary, r.ns, err)
	}
	in.cmd = cmd
	exited := in.exited
	in.mu.Unlock()
	go func() {
		err := cmd.Wait()
		in.mu.Lock()
		in.exitErr = err
		in.mu.Unlock()
		close(exited)
	}()

	client := &http.Client{Timeout: 500 * time.Millisecond}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(fmt.Sprintf("http://%s:%d/health/", r.addr, port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("%s (%s) exited at start: %v\n%s", r.name, binary, in.exitErr, in.output())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (%s) did not answer /health/ within 10s:\n%s", r.name, binary, in.output())
		}
	}
}

// signal sends sig to the region's instance.
func (in *instance) signal(sig syscall.Signal) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil {
		return errors.New("the instance is not running")
	}
	return in.cmd.Process.Signal(sig)
}

// exitWithin waits up to d for the instance to exit. It reports whether it did,
// and its exit error.
func (in *instance) exitWithin(d time.Duration) (bool, error) {
	in.mu.Lock()
	exited := in.exited
	in.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-exited:
	default:
		select {
		case <-exited:
		case <-timer.C:
			return false, nil
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return true, in.exitErr
}

// stop ends the instance if it runs, thawing it first in case it is frozen.
func (in *instance) stop() {
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// output returns what the instance has written.
func (in *instance) output() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.logs == nil {
		return ""
	}
	return in.logs.String()
}

// lockedBuffer lets a process write to a buffer that the harness reads.
type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
