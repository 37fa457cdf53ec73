package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/bcrypt"
)

// registry is a CNCF distribution registry (Debian's docker-registry) on a free
// loopback port, behind TLS with its own CA and htpasswd auth, as Artifact
// Registry is behind TLS and credentials.
type registry struct {
	host     string // 127.0.0.1:PORT
	user     string
	password string
	// caBundle is the system's CA certificates plus the test CA, for SSL_CERT_FILE:
	// the go command run under it must still reach the module proxy.
	caBundle string
	// certDir holds ca.crt, as skopeo's --src-cert-dir wants it.
	certDir   string
	transport http.RoundTripper
}

// startRegistry starts a registry that lives as long as the test.
func startRegistry(t *testing.T) *registry {
	t.Helper()
	need(t, "docker-registry")
	dir := t.TempDir()
	r := &registry{host: freeAddr(t), user: "ci", password: randomHex(t, 16)}

	certPEM, keyPEM := selfSignedCert(t)
	writeFile(t, filepath.Join(dir, "cert.pem"), certPEM)
	writeFile(t, filepath.Join(dir, "key.pem"), keyPEM)
	r.certDir = filepath.Join(dir, "certs")
	os.Mkdir(r.certDir, 0o755)
	writeFile(t, filepath.Join(r.certDir, "ca.crt"), certPEM)
	system, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	r.caBundle = filepath.Join(dir, "ca-bundle.pem")
	writeFile(t, r.caBundle, append(append(system, '\n'), certPEM...))

	hash, err := bcrypt.GenerateFromPassword([]byte(r.password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "htpasswd"), []byte(r.user+":"+string(hash)+"\n"))
	writeFile(t, filepath.Join(dir, "config.yml"), []byte(fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %[1]s/data
  delete:
    enabled: true
http:
  addr: %[2]s
  secret: %[3]s
  tls:
    certificate: %[1]s/cert.pem
    key: %[1]s/key.pem
auth:
  htpasswd:
    realm: e2e
    path: %[1]s/htpasswd
`, dir, r.host, randomHex(t, 16))))

	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("registry log, last lines:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	r.transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	client := &http.Client{Transport: r.transport, Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get("https://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("GET /v2/ without credentials = %d, want 401: auth is not on", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry did not answer on %s: %v", r.host, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return r
}

// options are go-containerregistry options that reach r with its credentials.
func (r *registry) options() []remote.Option {
	return []remote.Option{
		remote.WithAuth(&authn.Basic{Username: r.user, Password: r.password}),
		remote.WithTransport(r.transport),
	}
}

// tags lists the tags of repo, or none when the repository does not exist.
func (r *registry) tags(t *testing.T, repo string) []string {
	t.Helper()
	rp, err := name.NewRepository(r.host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(rp, r.options()...)
	if err != nil {
		return nil // NAME_UNKNOWN: nothing was ever pushed
	}
	return tags
}

// seedBase pushes a small static nonroot base image in the shape of
// gcr.io/distroless/static-debian13:nonroot, which cannot be pulled here: nonroot
// user 65532 in /etc/passwd and /etc/group, CA certificates, /tmp, /home/nonroot,
// no shell. It returns the reference to give KO_DEFAULTBASEIMAGE.
func (r *registry) seedBase(t *testing.T) string {
	t.Helper()
	files := []tarEntry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, body: "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		{name: "etc/group", mode: 0o644, body: "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"},
		{name: "etc/nsswitch.conf", mode: 0o644, body: "hosts: files dns\n"},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: readOr(t, "/etc/ssl/certs/ca-certificates.crt")},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true, uid: 65532},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarOf(t, files))), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config = v1.Config{
		User:       "65532",
		WorkingDir: "/home/nonroot",
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		},
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host + "/base/static:nonroot")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, r.options()...); err != nil {
		t.Fatalf("pushing the base image: %v", err)
	}
	return ref.String()
}

// tarEntry is one file or directory of a layer.
type tarEntry struct {
	name string
	mode int64
	dir  bool
	uid  int
	body string
}

// tarOf writes entries as a tar stream with fixed times, so the base is the same
// every run.
func tarOf(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// selfSignedCert returns a CA certificate that also serves 127.0.0.1 and localhost.
func selfSignedCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "hello e2e registry"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readOr(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("no %s on this machine; the base gets an empty CA bundle", path)
		return ""
	}
	return string(b)
}

// need fails the test, saying what to install, when a program is missing.
func need(t *testing.T, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed; the end-to-end test needs it (Debian: apt-get install docker-registry skopeo umoci runc)", p)
		}
	}
}

// startPlainRegistry starts a registry on a free loopback port with neither TLS
// nor a password, as the one make publish starts on localhost:5000, and returns
// its host:port.
func startPlainRegistry(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	host := freeAddr(t)
	writeFile(t, filepath.Join(dir, "config.yml"), []byte(fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s/data
http:
  addr: %s
`, dir, host)))
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return host
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plain registry did not answer on %s: %v", host, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// copyTo copies the image ref and the SBOM ko published beside it from r to the
// plain registry at host, under the same repository path, and returns the new
// digest reference.
func (r *registry) copyTo(t *testing.T, ref, host string) string {
	t.Helper()
	src, err := name.NewDigest(ref)
	if err != nil {
		t.Fatal(err)
	}
	repo := host + "/" + src.Context().RepositoryStr()
	sbomTag := strings.Replace(src.DigestStr(), ":", "-", 1) + ".sbom"
	for _, from := range []string{ref, src.Context().Name() + ":" + sbomTag} {
		fromRef, err := name.ParseReference(from)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(fromRef, r.options()...)
		if err != nil {
			t.Fatalf("reading %s: %v", from, err)
		}
		to := repo + "@" + src.DigestStr()
		if from != ref {
			to = repo + ":" + sbomTag
		}
		toRef, err := name.ParseReference(to, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(toRef, img); err != nil {
			t.Fatalf("writing %s: %v", to, err)
		}
	}
	return repo + "@" + src.DigestStr()
}
