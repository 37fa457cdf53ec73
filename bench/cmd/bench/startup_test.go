package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The padded baseline is as large as the size asked for, within a page, and
// still the baseline: it answers GET /health/.
func TestSizedBaseline(t *testing.T) {
	dir := t.TempDir()
	baseline := &server{name: "baseline", dir: "../..", pkg: "./servers/baseline"}
	if err := build(baseline, dir); err != nil {
		t.Fatal(err)
	}
	want := baseline.size + 300_000
	sized, err := sizedBaseline(baseline, want, dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := sized.size - want; d < -sizedSlack || d > sizedSlack {
		t.Errorf("padded baseline: %d bytes, want %d ± %d", sized.size, want, sizedSlack)
	}

	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sized.binary)
	cmd.Env = []string{fmt.Sprintf("PORT=%d", port), "REGION=europe-west1"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d/health/", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /health/ = %d, want 200", resp.StatusCode)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the padded baseline did not answer: %v", err)
		}
	}
}

// A hello no larger than the baseline has nothing to pad: refused, not measured.
func TestSizedBaselineRefusesASmallerHello(t *testing.T) {
	baseline := &server{name: "baseline", dir: "../..", pkg: "./servers/baseline", size: 5 << 20}
	_, err := sizedBaseline(baseline, 5<<20, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "is not larger than the baseline's") {
		t.Errorf("sizedBaseline with a hello as large as the baseline: %v, want a refusal before any build", err)
	}
}

// A file just written is dirty, and fadvise(DONTNEED) alone leaves it cached:
// dropCache writes it first, and leaves none of it in the page cache.
func TestDropCacheEvictsAFileJustWritten(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is on tmpfs, whose pages are the files themselves: nothing can drop them (make bench would refuse too)", dir)
	}
	path := filepath.Join(dir, "binary")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 1<<20), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cached, pages, err := cachedPages(f); err != nil || cached != pages {
		t.Fatalf("before: %d of %d pages cached (%v); want all of a file just written", cached, pages, err)
	}
	if err := dropCache(path); err != nil {
		t.Fatal(err)
	}
	if cached, pages, err := cachedPages(f); err != nil || cached != 0 {
		t.Errorf("after dropCache: %d of %d pages cached (%v), want 0", cached, pages, err)
	}
}
