package faults

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// build compiles the hello server, toxiproxy and cmd/faults into a temporary
// directory and returns their paths.
func build(t *testing.T) (hello, toxiproxy, faults string) {
	t.Helper()
	dir := t.TempDir()
	hello, toxiproxy, faults = filepath.Join(dir, "hello"), filepath.Join(dir, "toxiproxy"), filepath.Join(dir, "faults")
	for _, args := range [][]string{
		{"build", "-o", hello, "../.."},
		{"build", "-o", faults, "../../cmd/faults"},
		{"build", "-modfile=../../tools/toxiproxy/go.mod", "-o", toxiproxy, "github.com/Shopify/toxiproxy/v2/cmd/server"},
	} {
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return hello, toxiproxy, faults
}

// needRoot skips the test where it cannot run: without root or HAProxy. On CI,
// which runs as root and installs HAProxy, that is a failure instead.
func needRoot(t *testing.T) {
	t.Helper()
	if err := Requirements(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v; .ci/run runs as root and installs these", err)
		}
		t.Skipf("%v; this test did not run", err)
	}
}

func TestMissingRequirementsStopAtOnce(t *testing.T) {
	needRoot(t)
	hello, toxiproxy, faults := build(t)
	// A PATH with ip and nft but no haproxy.
	bin := t.TempDir()
	for _, name := range []string{"ip", "nft"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		cmd  *exec.Cmd
		want string
	}{
		{"without root", exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", faults, "-quick", "-binary", hello, "-toxiproxy", toxiproxy), "root"},
		{"without haproxy", exec.Command(faults, "-quick", "-binary", hello, "-toxiproxy", toxiproxy), "haproxy (Debian: apt-get install haproxy)"},
		{"without the server binary", exec.Command(faults, "-quick", "-binary", filepath.Join(bin, "missing"), "-toxiproxy", toxiproxy), "make faults builds it"},
	}
	tests[1].cmd.Env = []string{"PATH=" + bin}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			out, err := tt.cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("faults %s exited 0, want an error; output:\n%s", tt.name, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("faults %s said %q, want it to name %q", tt.name, out, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("faults %s took %s to refuse, want at once", tt.name, d)
			}
			if left, _ := Leftovers(); len(left) > 0 {
				t.Errorf("faults %s left %v behind", tt.name, left)
			}
		})
	}
}

// TestInterruptRemovesEverything interrupts a run, as Ctrl-C does, while the
// serving instance is frozen, and checks that the run removed every namespace,
// link and process it made.
func TestInterruptRemovesEverything(t *testing.T) {
	needRoot(t)
	hello, toxiproxy, faults := build(t)
	cmd := exec.Command(faults, "-quick", "-faults", "freeze", "-releases", "none", "-binary", hello, "-toxiproxy", toxiproxy)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "· injected") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the run never injected its fault; output:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if left, _ := Leftovers(); len(left) == 0 {
		t.Fatalf("no %s namespace or link exists while the run is under way; the check below would prove nothing", Prefix)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if err == nil || !strings.Contains(out.String(), "interrupted") {
		t.Errorf("interrupted run ended with %v, want an error saying it was interrupted; output:\n%s", err, out.String())
	}
	if left, err := Leftovers(); err != nil || len(left) > 0 {
		t.Errorf("after the interrupted run these remain: %v (%v)", left, err)
	}
	for _, p := range []string{hello, toxiproxy, "haproxy"} {
		if pids := running(p); len(pids) > 0 {
			t.Errorf("after the interrupted run %s still runs: pids %v", p, pids)
		}
	}
}

// running returns the processes whose executable is path, or whose name is
// path when it has no slash.
func running(path string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		if exe == path || (!strings.Contains(path, "/") && filepath.Base(exe) == path) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// syncBuffer is a bytes.Buffer a process writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
