package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/example/hello/e2e/internal/basestandin"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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

// seedBase pushes the stand-in for gcr.io/distroless/static-debian13:nonroot,
// which cannot be pulled here (internal/basestandin), with this machine's CA
// certificates. It returns the reference to give KO_DEFAULTBASEIMAGE.
func (r *registry) seedBase(t *testing.T) string {
	t.Helper()
	ca := basestandin.MachineCABundle()
	if ca == "" {
		t.Logf("no CA certificates on this machine; the base gets an empty CA bundle")
	}
	img, err := basestandin.Image(ca)
	if err != nil {
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
