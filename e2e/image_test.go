// Package e2e proves the image path end to end: make publish pushes to a real
// registry, the image is inspected as pushed, and it is run for real with runc.
// It lives in its own module so that go.mod of the service stays small and
// `go test ./...` at the root stays fast. Run it with `make e2e`, as root (runc and
// umoci unpack need it), with docker-registry, skopeo, umoci and runc installed.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/hello/e2e/internal/imageinfo"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// repoRoot is the service's repository, where the Makefile is.
const repoRoot = ".."

// imageRepo is the Artifact Registry "repository" part of KO_DOCKER_REPO here;
// ko names the image after the command, hello.
const imageRepo = "containers"

func TestImage(t *testing.T) {
	need(t, "make", "skopeo", "umoci", "runc")
	if os.Geteuid() != 0 {
		t.Fatalf("the end-to-end test runs the image with runc and must run as root")
	}
	reg := startRegistry(t)
	base := reg.seedBase(t)
	t.Logf("registry https://%s with a seeded base %s", reg.host, base)

	dockerConfig := t.TempDir()
	env := []string{
		"KO_DOCKER_REPO=" + reg.host + "/" + imageRepo,
		"KO_DEFAULTBASEIMAGE=" + base,
		"SSL_CERT_FILE=" + reg.caBundle,
		"DOCKER_CONFIG=" + dockerConfig,
		"VERSION=e2e-1",
	}
	image := reg.host + "/" + imageRepo + "/hello"

	t.Run("publish without credentials fails and publishes nothing", func(t *testing.T) {
		out, err := makeTarget(t, env, "publish")
		if err == nil {
			t.Fatalf("make publish without credentials succeeded, want a failure; output:\n%s", out)
		}
		if !strings.Contains(out, "UNAUTHORIZED") && !strings.Contains(out, "401") {
			t.Errorf("make publish without credentials: want ko's authentication error in the output, got:\n%s", out)
		}
		if tags := reg.tags(t, imageRepo+"/hello"); len(tags) != 0 {
			t.Errorf("tags after a failed publish = %v, want none", tags)
		}
	})

	t.Run("publish with a wrong password fails and publishes nothing", func(t *testing.T) {
		koLogin(t, env, reg, "not-the-password")
		out, err := makeTarget(t, env, "publish")
		if err == nil {
			t.Fatalf("make publish with a wrong password succeeded; output:\n%s", out)
		}
		if tags := reg.tags(t, imageRepo+"/hello"); len(tags) != 0 {
			t.Errorf("tags after a failed publish = %v, want none", tags)
		}
	})

	koLogin(t, env, reg, reg.password)
	t.Run("publish to an unreachable registry fails", func(t *testing.T) {
		unreachable := slices.Clone(env)
		unreachable[0] = "KO_DOCKER_REPO=" + freeAddr(t) + "/" + imageRepo
		out, err := makeTarget(t, unreachable, "publish")
		if err == nil {
			t.Fatalf("make publish to a closed port succeeded; output:\n%s", out)
		}
		if !strings.Contains(out, "connection refused") {
			t.Errorf("make publish to a closed port: want ko's connection error in the output, got:\n%s", out)
		}
	})

	digestRef := regexp.MustCompile(`^` + regexp.QuoteMeta(image) + `@sha256:[0-9a-f]{64}$`)
	published := publish(t, env, digestRef)
	t.Logf("published %s", published)

	t.Run("the image is linux/amd64, nonroot, static and stripped, without a shell", func(t *testing.T) {
		info := inspect(t, reg, published)
		var report bytes.Buffer
		info.WriteReport(&report, published)
		t.Logf("image report:\n%s", report.String())

		if info.Platform != "linux/amd64" {
			t.Errorf("platform = %s, want linux/amd64", info.Platform)
		}
		if info.User != "65532" {
			t.Errorf("user = %q, want 65532 (nonroot)", info.User)
		}
		if !slices.Equal(info.Entrypoint, []string{"/ko-app/hello"}) {
			t.Errorf("entrypoint = %q, want [/ko-app/hello]", info.Entrypoint)
		}
		if b := info.Binary; !b.Static() {
			t.Errorf("binary is dynamic: PT_INTERP %q, DT_NEEDED %q", b.Interp, b.Needed)
		}
		if b := info.Binary; !b.Stripped() {
			t.Errorf("binary is not stripped: .symtab %v, debug sections %q", b.Symtab, b.Debug)
		}
		// The base is taken by tag (.ko.yaml), so the image must say which one it got.
		baseDigest, err := fetchImage(t, reg, base).Digest()
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Annotations[imageinfo.BaseDigest]; got != baseDigest.String() {
			t.Errorf("annotation %s = %q, want the base's digest %s", imageinfo.BaseDigest, got, baseDigest)
		}
		if got := info.Annotations[imageinfo.BaseName]; got != base {
			t.Errorf("annotation %s = %q, want %q", imageinfo.BaseName, got, base)
		}
		for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"} {
			if info.Files[shell] {
				t.Errorf("the image has /%s, want no shell", shell)
			}
		}
	})

	t.Run("the binary is built by go.mod's toolchain, and govulncheck finds nothing in it", func(t *testing.T) {
		info := inspect(t, reg, published)
		if want := pinnedGo(t); info.Binary.GoVersion != want {
			t.Errorf("the published binary was built by %q, want %q (go.mod's toolchain line)", info.Binary.GoVersion, want)
		}
		bin := filepath.Join(t.TempDir(), "hello")
		writeFile(t, bin, info.Binary.Content)
		if out, err := makeTarget(t, []string{"BINARY=" + bin, "VULN_DB=snapshot"}, "vulncheck"); err != nil {
			t.Errorf("make vulncheck on the published binary: %v\n%s", err, out)
		}

		// The same check must fail on a binary built with a Go that Go's advisories
		// name (1.26.8, fixed in 1.26.9 and 1.26.10), or it proves nothing.
		old := filepath.Join(t.TempDir(), "oldgo")
		build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", old, ".")
		build.Dir = filepath.Join("testdata", "oldgo")
		build.Env = append(os.Environ(), "GOTOOLCHAIN=go1.26.8", "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building testdata/oldgo with go1.26.8: %v\n%s", err, out)
		}
		out, err := makeTarget(t, []string{"BINARY=" + old, "VULN_DB=snapshot"}, "vulncheck")
		if err == nil {
			t.Errorf("make vulncheck passed a binary built by go1.26.8, want a failure; output:\n%s", out)
		}
		for _, id := range []string{"GO-2026-6809", "GO-2026-6613"} {
			if !strings.Contains(out, id) {
				t.Errorf("make vulncheck on a go1.26.8 binary does not name %s; output:\n%s", id, out)
			}
		}
	})

	t.Run("tags and SBOM are published", func(t *testing.T) {
		tags := reg.tags(t, imageRepo+"/hello")
		digest := published[strings.LastIndex(published, "@")+1:]
		sbomTag := strings.Replace(digest, ":", "-", 1) + ".sbom"
		for _, want := range []string{"e2e-1", "latest", sbomTag} {
			if !slices.Contains(tags, want) {
				t.Errorf("tags = %v, want %q among them", tags, want)
			}
		}
		for _, tag := range []string{"e2e-1", "latest"} {
			ref, _ := name.ParseReference(image + ":" + tag)
			desc, err := remote.Head(ref, reg.options()...)
			if err != nil || desc.Digest.String() != digest {
				t.Errorf("%s:%s = %v (%v), want %s", image, tag, desc, err, digest)
			}
		}
		sbom := sbomText(t, reg, image+":"+sbomTag)
		for _, want := range []string{"SPDX", "github.com/go-chi/chi/v5", "github.com/example/hello"} {
			if !strings.Contains(sbom, want) {
				t.Errorf("the SBOM does not mention %q", want)
			}
		}
	})

	t.Run("the same source publishes the same digest", func(t *testing.T) {
		again := publish(t, env, digestRef)
		if again != published {
			t.Errorf("second publish = %s, want %s: the build is not reproducible", again, published)
		}
	})

	t.Run("make sign, make verify, make release and make deploy", func(t *testing.T) {
		testSigning(t, reg, env, image, published, digestRef)
	})

	t.Run("the image runs under runc, read-only, as 65532, and stops cleanly on SIGTERM", func(t *testing.T) {
		runImage(t, reg, published)
	})

	t.Run("make image and make image-report", func(t *testing.T) {
		if out, err := makeTarget(t, env, "image"); err != nil {
			t.Fatalf("make image: %v\n%s", err, out)
		}
		out, err := makeTarget(t, env, "image-report")
		if err != nil {
			t.Fatalf("make image-report: %v\n%s", err, out)
		}
		t.Logf("make image-report:\n%s", out)
		for _, want := range []string{"platform    linux/amd64", "static: true, stripped: true", "go build output", "total "} {
			if !strings.Contains(out, want) {
				t.Errorf("make image-report output lacks %q", want)
			}
		}
	})
}

// fetchImage fetches the image ref from reg.
func fetchImage(t *testing.T, reg *registry, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, reg.options()...)
	if err != nil {
		t.Fatalf("fetching %s: %v", ref, err)
	}
	return img
}

// inspect fetches ref from reg and reads it.
func inspect(t *testing.T, reg *registry, ref string) imageinfo.Info {
	t.Helper()
	info, err := imageinfo.Inspect(fetchImage(t, reg, ref))
	if err != nil {
		t.Fatalf("inspecting %s: %v", ref, err)
	}
	return info
}

// pinnedGo returns the Go release go.mod's toolchain line names, such as go1.26.10.
func pinnedGo(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^toolchain (go1\.\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("go.mod has no toolchain line: the Go that builds the image is not pinned")
	}
	return string(m[1])
}

// makeTarget runs make TARGET in the repository with env added to this process's
// environment, and returns stdout and stderr together.
func makeTarget(t *testing.T, env []string, target string) (string, error) {
	t.Helper()
	stdout, stderr, err := makeTargetSplit(t, env, target)
	return stdout + stderr, err
}

// makeTargetSplit is makeTarget with stdout and stderr apart.
func makeTargetSplit(t *testing.T, env []string, target string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command("make", "--no-print-directory", "-C", repoRoot, target)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err = cmd.Run()
	t.Logf("make %s: %v in %s", target, exitStatus(err), time.Since(start).Round(time.Millisecond))
	return out.String(), errOut.String(), err
}

// publish runs make publish and returns the reference it printed last.
func publish(t *testing.T, env []string, want *regexp.Regexp) string {
	t.Helper()
	stdout, stderr, err := makeTargetSplit(t, env, "publish")
	if err != nil {
		t.Fatalf("make publish: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	last := lines[len(lines)-1]
	if !want.MatchString(last) {
		t.Fatalf("the last line of make publish's stdout = %q, want %s", last, want)
	}
	return last
}

// koLogin stores credentials for reg in the Docker config of env, with ko login,
// as CI does for Artifact Registry.
func koLogin(t *testing.T, env []string, reg *registry, password string) {
	t.Helper()
	cmd := exec.Command("go", "tool", "-modfile=tools/go.mod", "ko", "login", reg.host, "-u", reg.user, "--password-stdin")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ko login: %v\n%s", err, out)
	}
}

// sbomText returns the SBOM stored under ref.
func sbomText(t *testing.T, reg *registry, ref string) string {
	t.Helper()
	layers, err := fetchImage(t, reg, ref).Layers()
	if err != nil || len(layers) == 0 {
		t.Fatalf("the SBOM %s has no layer (%v)", ref, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runImage copies ref out of the registry with skopeo, unpacks it with umoci and
// runs it with runc: read-only root file system, the image's user, the host's
// network namespace. It checks the answers, the user, the missing shell and the
// exit status after SIGTERM.
func runImage(t *testing.T, reg *registry, ref string) {
	dir := t.TempDir()
	ociDir, bundle := filepath.Join(dir, "oci"), filepath.Join(dir, "bundle")
	run(t, "skopeo", "copy", "--quiet", "--src-creds", reg.user+":"+reg.password, "--src-cert-dir", reg.certDir,
		"docker://"+ref, "oci:"+ociDir+":hello")
	run(t, "umoci", "unpack", "--image", ociDir+":hello", bundle)

	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	spec := readSpec(t, bundle)
	spec.set(t, "root", "readonly", true)
	spec.set(t, "process", "terminal", false)
	spec.appendEnv(t, "PORT="+port, "REGION=europe-west9")
	spec.dropNamespace(t, "network")
	spec.write(t, bundle)
	if uid := spec.uid(t); uid != 65532 {
		t.Errorf("umoci made the container user %d from the image, want 65532", uid)
	}
	if _, err := os.Lstat(filepath.Join(bundle, "rootfs", "bin", "sh")); err == nil {
		t.Errorf("the unpacked root file system has /bin/sh, want no shell")
	}

	id := "hello-e2e-" + randomHex(t, 4)
	var logs bytes.Buffer
	cmd := exec.Command("runc", "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("runc run: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		exec.Command("runc", "kill", id, "KILL").Run()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
		exec.Command("runc", "delete", "--force", id).Run()
	})

	base := "http://" + addr
	waitHealthy(t, base+"/health/", exited, &logs)
	for path, want := range map[string]string{
		"/":        `{"message":"Hello world!","region":"europe-west9"}` + "\n",
		"/health/": `{"status":"ok"}` + "\n",
	} {
		status, body := get(t, base+path)
		if status != 200 || body != want {
			t.Errorf("GET %s from the container = %d %q, want 200 %q", path, status, body, want)
		}
	}

	var state struct{ Pid int }
	if out, err := exec.Command("runc", "state", id).Output(); err != nil || json.Unmarshal(out, &state) != nil {
		t.Errorf("runc state %s: %v", id, err)
	} else if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", state.Pid)); err != nil {
		t.Errorf("reading the container process's status: %v", err)
	} else if !regexp.MustCompile(`(?m)^Uid:\s+65532\s+65532\s+65532\s+65532$`).Match(status) {
		t.Errorf("the container process does not run as 65532:\n%s", status)
	}
	if out, err := exec.Command("runc", "exec", id, "/bin/sh", "-c", "true").CombinedOutput(); err == nil {
		t.Errorf("runc exec /bin/sh succeeded, want no shell in the image; output: %s", out)
	}

	if out, err := exec.Command("runc", "kill", id, "TERM").CombinedOutput(); err != nil {
		t.Fatalf("runc kill TERM: %v\n%s", err, out)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after SIGTERM the container exited with %v, want status 0; logs:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the container did not exit within 15s of SIGTERM; logs:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"message":"stopped"`) {
		t.Errorf("the container's logs lack the clean stop line:\n%s", logs.String())
	}
}

// waitHealthy polls url until it answers 200, failing if the process exits first.
func waitHealthy(t *testing.T, url string, exited <-chan error, logs *bytes.Buffer) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("the container exited (%v) before it answered; logs:\n%s", err, logs.String())
		default:
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within 20s; logs:\n%s", url, logs.String())
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
