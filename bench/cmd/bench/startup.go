package main

// Start-up as Cloud Run shapes it: K_SERVICE set, so the service is on the path
// that asks the metadata server; a cgroup of 1 vCPU and 256 MiB (the deploy's
// limits); the binary's pages dropped from the page cache before each start (image
// streaming fetches pages on first touch); and three ways to run it: the bare
// binary, the published image under runc, and the same image under runsc
// (gVisor, the sandbox of Cloud Run's first-generation execution environment).

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The limits of deploy/service.yaml: cpu "1", memory 256Mi.
const (
	shapeCPUQuota  = 100_000 // µs per period: one CPU
	shapeCPUPeriod = 100_000
	shapeMemory    = 256 << 20
)

// stub is a metadata server that answers after delay, or never.
type stub struct {
	name  string
	delay time.Duration
	never bool
	srv   *http.Server
	addr  string
}

func startStub(name string, delay time.Duration, never bool) (*stub, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &stub{name: name, delay: delay, never: never, addr: ln.Addr().String()}
	answers := map[string]string{
		"/computeMetadata/v1/instance/region":    "projects/123456789/regions/europe-west1",
		"/computeMetadata/v1/project/project-id": "bench-project",
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait := time.After(delay)
		if never {
			wait = nil
		}
		select {
		case <-wait:
		case <-r.Context().Done():
			return
		}
		v, ok := answers[r.URL.Path]
		if !ok || r.Header.Get("Metadata-Flavor") != "Google" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Metadata-Flavor", "Google")
		io.WriteString(w, v)
	})}
	go s.srv.Serve(ln)
	return s, nil
}

// variant is one server started one way: hello with a metadata stub, or a
// baseline (which asks nothing).
type variant struct {
	server *server
	stub   *stub // nil: a baseline
	name   string
	accept []time.Duration // start to the first accepted connection
	first  []time.Duration // start to the first 200 on /
}

// shape is one way of running a start.
type shape struct {
	name     string
	variants []*variant
	err      error // why the shape was not measured
	// run starts v on port and returns when the clock should start, a function
	// that starts the process, and one that stops and cleans up.
	prepare func(v *variant, port int) (startFn func() error, stop func(), err error)
}

// env is what Cloud Run would give v's process (K_SERVICE) and what the deploy
// gives it (REGION), with the stub as its metadata server. GOMAXPROCS is not set:
// the runtime takes it from the cgroup's CPU limit, as on Cloud Run.
func (v *variant) env(port int) []string {
	env := []string{"PORT=" + strconv.Itoa(port), "K_SERVICE=hello", "K_REVISION=hello-00001-abc", "REGION=europe-west1"}
	if v.stub != nil {
		env = append(env, "GCE_METADATA_HOST="+v.stub.addr)
	}
	return env
}

// dropCache evicts a file's pages from the page cache, so that the next start
// reads them again, as a fresh instance fetches the image's. fadvise(DONTNEED)
// leaves dirty pages in place, and a binary just built or unpacked is dirty
// until the kernel writes it back (up to 30 s): it is written first. It fails if
// any page is still cached after that, rather than time a warm start as a cold one.
func dropCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return err
	}
	cached, pages, err := cachedPages(f)
	if err != nil {
		return err
	}
	if cached > 0 {
		why := "is it running?"
		var fs unix.Statfs_t
		if unix.Fstatfs(int(f.Fd()), &fs) == nil && fs.Type == unix.TMPFS_MAGIC {
			why = "it is on tmpfs, whose pages are the file itself: set TMPDIR to a directory on a disk"
		}
		return fmt.Errorf("%d of the %d pages of %s are still in the page cache after fadvise(DONTNEED): %s", cached, pages, path, why)
	}
	return nil
}

// cachedPages counts the pages of f in the page cache (mincore).
func cachedPages(f *os.File) (cached, pages int, err error) {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return 0, 0, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, 0, fmt.Errorf("mincore %s: %w", f.Name(), errno)
	}
	for _, v := range vec {
		cached += int(v & 1)
	}
	return cached, len(vec), nil
}

// cgroup is a cgroup with the deploy's CPU and memory limits, v1 or v2.
type cgroup struct {
	procs []string // the cgroup.procs files a process joins
	dirs  []string
}

func newCgroup(name string, cpus int) (*cgroup, error) {
	root := "/sys/fs/cgroup"
	cg := &cgroup{}
	write := func(path, value string) error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		// v2: enable the controllers for children, then one group.
		if err := write(filepath.Join(root, "cgroup.subtree_control"), "+cpu +memory"); err != nil {
			return nil, err
		}
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		cg.dirs = []string{dir}
		if err := write(filepath.Join(dir, "cpu.max"), fmt.Sprintf("%d %d", cpus*shapeCPUQuota, shapeCPUPeriod)); err != nil {
			return nil, err
		}
		if err := write(filepath.Join(dir, "memory.max"), strconv.Itoa(shapeMemory)); err != nil {
			return nil, err
		}
		cg.procs = []string{filepath.Join(dir, "cgroup.procs")}
		return cg, nil
	}
	cpu, mem := filepath.Join(root, "cpu", name), filepath.Join(root, "memory", name)
	for _, dir := range []string{cpu, mem} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("making cgroup %s (v1; run as root): %w", dir, err)
		}
		cg.dirs = append(cg.dirs, dir)
		cg.procs = append(cg.procs, filepath.Join(dir, "cgroup.procs"))
	}
	for path, value := range map[string]string{
		filepath.Join(cpu, "cpu.cfs_period_us"):     strconv.Itoa(shapeCPUPeriod),
		filepath.Join(cpu, "cpu.cfs_quota_us"):      strconv.Itoa(cpus * shapeCPUQuota),
		filepath.Join(mem, "memory.limit_in_bytes"): strconv.Itoa(shapeMemory),
	} {
		if err := write(path, value); err != nil {
			return nil, err
		}
	}
	return cg, nil
}

func (cg *cgroup) remove() {
	for _, dir := range cg.dirs {
		os.Remove(dir)
	}
}

// binaryShape runs the bare binary in cg, on the CPUs in cpus (taskset's list).
// A shell joins the cgroup, says so, and waits for a line before it execs the
// binary: the clock starts at that line.
func binaryShape(cg *cgroup, cpus string) func(v *variant, port int) (func() error, func(), error) {
	return func(v *variant, port int) (func() error, func(), error) {
		if err := dropCache(v.server.binary); err != nil {
			return nil, nil, err
		}
		join := "taskset -cp " + cpus + " $$ >/dev/null && "
		for _, p := range cg.procs {
			join += "echo $$ > " + p + " && "
		}
		cmd := exec.Command("sh", "-c", join+`echo joined && read _ && exec "$0"`, v.server.binary)
		cmd.Env = v.env(port)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, nil, err
		}
		stop := func() { cmd.Process.Kill(); cmd.Wait() }
		out := bufio.NewReader(stdout)
		if line, err := out.ReadString('\n'); err != nil || line != "joined\n" {
			stop()
			return nil, nil, fmt.Errorf("joining the cgroup: %q %v", line, err)
		}
		go io.Copy(io.Discard, out)
		return func() error { _, err := io.WriteString(stdin, "\n"); return err }, stop, nil
	}
}

// bundles are OCI runtime bundles of the published image: hello's as ko built
// it, and the baseline's, the same root file system with the baseline binary
// beside hello's.
type bundles struct {
	dir    string
	rootfs string
	spec   map[string]any // umoci's config.json
}

// unpackImage unpacks the OCI layout at layout (make image) with umoci and adds
// the baselines' binaries to its root file system, beside hello's.
func unpackImage(layout, dir string, baselines ...*server) (*bundles, error) {
	if _, err := os.Stat(filepath.Join(layout, "index.json")); err != nil {
		return nil, fmt.Errorf("no image at %s: `make bench` builds it with `make image` first", layout)
	}
	// ko's layout has one image; umoci wants a tag, so copy it with skopeo.
	tagged := filepath.Join(dir, "oci")
	if out, err := exec.Command("skopeo", "copy", "--quiet", "oci:"+layout, "oci:"+tagged+":hello").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("skopeo copy: %v\n%s", err, out)
	}
	b := &bundles{dir: filepath.Join(dir, "bundle")}
	if out, err := exec.Command("umoci", "unpack", "--image", tagged+":hello", b.dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("umoci unpack: %v\n%s", err, out)
	}
	b.rootfs = filepath.Join(b.dir, "rootfs")
	raw, err := os.ReadFile(filepath.Join(b.dir, "config.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &b.spec); err != nil {
		return nil, err
	}
	for _, s := range baselines {
		bin, err := os.ReadFile(s.binary)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(b.rootfs, b.path(s)), bin, 0o755); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// path is where s's binary is in the image: hello's where ko put it, a
// baseline's beside it.
func (b *bundles) path(s *server) string {
	if s.name == "hello" {
		return "/ko-app/hello"
	}
	return "/ko-app/" + filepath.Base(s.binary)
}

// binary is the path of v's binary inside the root file system.
func (b *bundles) binary(v *variant) string {
	return filepath.Join(b.rootfs, b.path(v.server))
}

// bundle writes a bundle for one start of v: umoci's spec with the root file
// system read-only, the host's network (the stub is on loopback), v's
// environment, and the deploy's limits in a cgroup of its own.
func (b *bundles) bundle(v *variant, port int, id string) (string, error) {
	var spec map[string]any
	raw, _ := json.Marshal(b.spec)
	json.Unmarshal(raw, &spec)
	spec["root"] = map[string]any{"path": b.rootfs, "readonly": true}
	process := spec["process"].(map[string]any)
	process["terminal"] = false
	env, _ := process["env"].([]any)
	for _, e := range v.env(port) {
		env = append(env, e)
	}
	process["env"] = env
	process["args"] = []any{b.path(v.server)}
	linux := spec["linux"].(map[string]any)
	var namespaces []any
	for _, ns := range linux["namespaces"].([]any) {
		if ns.(map[string]any)["type"] != "network" {
			namespaces = append(namespaces, ns)
		}
	}
	linux["namespaces"] = namespaces
	linux["cgroupsPath"] = "/" + id
	linux["resources"] = map[string]any{
		"cpu":    map[string]any{"quota": shapeCPUQuota, "period": shapeCPUPeriod},
		"memory": map[string]any{"limit": shapeMemory},
	}
	dir := filepath.Join(b.dir, "..", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out, _ := json.MarshalIndent(spec, "", "  ")
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), out, 0o644)
}

// runtimeShape runs the image with an OCI runtime (runc, or runsc with flags):
// `create` makes the container and its sandbox, untimed; the clock starts at
// `start`, which lets the container's process exec the binary.
func runtimeShape(b *bundles, runtime []string, n *int) func(v *variant, port int) (func() error, func(), error) {
	return func(v *variant, port int) (func() error, func(), error) {
		*n++
		id := fmt.Sprintf("hello-bench-%d-%d", os.Getpid(), *n)
		dir, err := b.bundle(v, port, id)
		if err != nil {
			return nil, nil, err
		}
		if err := dropCache(b.binary(v)); err != nil {
			return nil, nil, err
		}
		logs, err := os.Create(filepath.Join(dir, "output"))
		if err != nil {
			return nil, nil, err
		}
		rt := func(args ...string) *exec.Cmd {
			return exec.Command(runtime[0], append(slices.Clone(runtime[1:]), args...)...)
		}
		// On CPU 0, as the other servers (the prober runs on CPU 1): the
		// container's processes inherit the runtime's affinity.
		create := exec.Command("taskset", append([]string{"-c", "0"}, append(slices.Clone(runtime), "create", "--bundle", dir, id)...)...)
		// A file, not a pipe: the container keeps its output after create returns.
		create.Stdout, create.Stderr = logs, logs
		stop := func() {
			rt("kill", id, "KILL").Run()
			rt("delete", "--force", id).Run()
			logs.Close()
			os.RemoveAll(dir)
		}
		if err := create.Run(); err != nil {
			out, _ := os.ReadFile(logs.Name())
			stop()
			return nil, nil, fmt.Errorf("%s create: %v\n%s", runtime[0], err, out)
		}
		return func() error {
			if out, err := rt("start", id).CombinedOutput(); err != nil {
				return fmt.Errorf("%s start: %v\n%s", runtime[0], err, out)
			}
			return nil
		}, stop, nil
	}
}

// startOnce measures one start of v in shape s: from the start to the first
// connection the kernel accepts (what a TCP startup probe sees) and to the first
// 200 on / (an HTTP probe), which must name the region.
func startOnce(s *shape, v *variant) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	startFn, stop, err := s.prepare(v, port)
	if err != nil {
		return err
	}
	defer stop()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	t0 := time.Now()
	if err := startFn(); err != nil {
		return err
	}
	deadline := t0.Add(15 * time.Second)
	var accepted time.Duration
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		if accepted == 0 {
			accepted = time.Since(t0)
		}
		conn.SetDeadline(deadline)
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			continue // the listener was not the server's yet, or it closed
		}
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET / = %d %q", resp.StatusCode, body)
		}
		if v.stub != nil && !strings.Contains(string(body), `"region":"europe-west1"`) {
			return fmt.Errorf("GET / = %q, want region europe-west1", body)
		}
		v.accept = append(v.accept, accepted)
		v.first = append(v.first, time.Since(t0))
		return nil
	}
	return errors.New("no 200 on / within 15s")
}

// shapedStartups measures every variant in every shape, n starts each, in
// rounds with a rotating order so that the baseline is paired with hello.
func shapedStartups(o options, dir string, hello, baseline, sized, before *server) ([]*shape, error) {
	var stubs []*stub
	for _, st := range []struct {
		name  string
		delay time.Duration
		never bool
	}{{"answers at once", 0, false}, {"answers after 500 ms", 500 * time.Millisecond, false}, {"never answers", 0, true}} {
		s, err := startStub(st.name, st.delay, st.never)
		if err != nil {
			return nil, err
		}
		defer s.srv.Close()
		stubs = append(stubs, s)
	}
	variants := func(withBefore bool) []*variant {
		vs := []*variant{{server: baseline, name: "baseline"}, {server: sized, name: sizedLabel(sized, baseline)}}
		for _, st := range stubs {
			vs = append(vs, &variant{server: hello, stub: st, name: "hello, metadata " + st.name})
		}
		if withBefore && before != nil {
			vs = append(vs, &variant{server: before, stub: stubs[1], name: before.name + ", metadata " + stubs[1].name})
		}
		return vs
	}

	var shapes []*shape
	if os.Geteuid() != 0 {
		return nil, errors.New("the Cloud Run-shaped start-ups make cgroups and run containers: run make bench as root")
	}
	cg, err := newCgroup(fmt.Sprintf("hello-bench-%d", os.Getpid()), 1)
	if err != nil {
		return nil, err
	}
	defer cg.remove()
	shapes = append(shapes, &shape{name: "binary", variants: variants(true), prepare: binaryShape(cg, "0")}) // CPU 0, as the other servers: the prober runs on CPU 1
	// Startup CPU boost doubles the CPU of a 1-CPU instance while it starts: the
	// same start with 2 CPUs says what it would buy.
	boost, err := newCgroup(fmt.Sprintf("hello-bench-%d-boost", os.Getpid()), 2)
	if err != nil {
		return nil, err
	}
	defer boost.remove()
	// Only the baseline (vs[0]) and hello with the metadata server answering at
	// once (vs[2], after the padded baseline): whether the boost helps at all.
	vs := variants(false)
	shapes = append(shapes, &shape{name: "binary, 2 CPUs (startup CPU boost)", variants: []*variant{vs[0], vs[2]}, prepare: binaryShape(boost, "0,1")})

	b, err := unpackImage(o.image, dir, baseline, sized)
	if err != nil {
		return nil, err
	}
	var n int
	shapes = append(shapes, &shape{name: "image under runc", variants: variants(false), prepare: runtimeShape(b, []string{"runc"}, &n)})
	// ptrace: no KVM on most machines, and Cloud Run's own platform is neither.
	runsc := &shape{name: "image under runsc (gVisor, ptrace)", variants: variants(false),
		prepare: runtimeShape(b, []string{"runsc", "--platform=ptrace", "--network=host"}, &n)}
	if _, err := exec.LookPath("runsc"); err != nil {
		runsc.err = errors.New("runsc is not installed (Debian: apt-get install runsc)")
	}
	shapes = append(shapes, runsc)

	for _, s := range shapes {
		if s.err != nil {
			progress("start-up, %s: not measured: %v", s.name, s.err)
			continue
		}
		progress("start-up, %s: %d starts of each of %d variants", s.name, o.shapedStartups, len(s.variants))
		for i := range o.shapedStartups {
			vs := slices.Clone(s.variants)
			k := i % len(vs)
			vs = append(vs[k:], vs[:k]...)
			for _, v := range vs {
				if err := startOnce(s, v); err != nil {
					if s.err = fmt.Errorf("%s: %w", v.name, err); i > 0 || s == shapes[0] {
						return nil, fmt.Errorf("start-up, %s: %w", s.name, s.err)
					}
					// The first start of a sandbox failed: this machine cannot run it.
					progress("start-up, %s: not measured: %v", s.name, s.err)
					break
				}
			}
			if s.err != nil {
				break
			}
		}
	}
	return shapes, nil
}

// percentile is the p-th percentile (0 < p ≤ 100) of xs, nearest rank.
func percentile(xs []time.Duration, p float64) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// baseline is the shape's baseline variant.
func (s *shape) baseline() *variant {
	for _, v := range s.variants {
		if v.stub == nil && v.server.name != sizedName {
			return v
		}
	}
	return nil
}

// sized is the shape's variant of the baseline padded to hello's size, or nil.
func (s *shape) sized() *variant {
	for _, v := range s.variants {
		if v.server.name == sizedName {
			return v
		}
	}
	return nil
}

// sizedName names the baseline padded to hello's size (sizedBaseline).
const sizedName = "baseline-sized"

// sizedLabel is the padded baseline's row in the report.
func sizedLabel(sized, baseline *server) string {
	return fmt.Sprintf("baseline padded to hello's size (%.2f MB, +%.2f MB)", float64(sized.size)/1e6, float64(sized.size-baseline.size)/1e6)
}

// sizedBaseline builds the baseline with a string constant that makes its
// binary size bytes long, as long as hello's: the same start, with as many
// bytes to read from disk. A cold start reads the binary at the disk's speed
// (this machine reads ahead 8 MiB at a time), so what hello's start costs
// beyond this one is what the service does, not what its size does. The
// constant is never read; a file added to the package with go build's
// -overlay carries it, so that nothing of it is in the repository.
func sizedBaseline(baseline *server, size int64, dir string) (*server, error) {
	sized := &server{name: sizedName, dir: baseline.dir, pkg: baseline.pkg}
	pkgDir, err := filepath.Abs(filepath.Join(baseline.dir, baseline.pkg))
	if err != nil {
		return nil, err
	}
	pad := size - baseline.size
	if pad <= 0 {
		return nil, fmt.Errorf("hello's binary (%d bytes) is not larger than the baseline's (%d)", size, baseline.size)
	}
	src := filepath.Join(dir, "pad.go")
	if err := os.WriteFile(src, []byte(padSource(pad)), 0o644); err != nil {
		return nil, err
	}
	overlay, err := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(pkgDir, "zz_pad.go"): src}})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "overlay.json"), overlay, 0o644); err != nil {
		return nil, err
	}
	if err := build(sized, dir, "-overlay="+filepath.Join(dir, "overlay.json")); err != nil {
		return nil, err
	}
	if d := sized.size - size; d < -sizedSlack || d > sizedSlack {
		return nil, fmt.Errorf("the padded baseline is %d bytes, hello %d: more than %d apart", sized.size, size, sizedSlack)
	}
	return sized, nil
}

// sizedSlack is how far the padded baseline's size may be from hello's: a page.
const sizedSlack = 4096

// padSource is a Go file of package main that adds n bytes of constant data to
// the binary. The data is read only when HELLO_BENCH_PAD is "print", which
// nothing sets, so that the linker keeps it.
func padSource(n int64) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	return "package main\n\nimport \"os\"\n\n" +
		"// pad makes the binary as large as hello's (make bench: the padded baseline).\n" +
		"var pad = \"" + strings.Repeat(alphabet, int(n)/len(alphabet)+1)[:n] + "\"\n\n" +
		"func init() {\n\tif os.Getenv(\"HELLO_BENCH_PAD\") == \"print\" {\n\t\tos.Stdout.WriteString(pad)\n\t}\n}\n"
}
