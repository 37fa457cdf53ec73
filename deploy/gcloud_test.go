package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// gcloud parses a Cloud Run manifest into the Cloud Run API's messages before it
// asks for credentials: a field that is misspelt or of the wrong type (an
// annotation written as a YAML boolean, say) fails there. The manifest, with the
// values Cloud Deploy would put in, must get as far as the login.
func TestGcloudParsesTheManifest(t *testing.T) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gcloud is not installed; CI's machines have it (Debian: google-cloud-cli)")
		}
		t.Skip("gcloud is not installed")
	}
	text, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]string{
		"region":                  "europe-west1",
		"project_id":              "my-project",
		"runtime_service_account": "hello-runtime@my-project.iam.gserviceaccount.com",
	}
	param := regexp.MustCompile(`"" # from-param: \$\{(\w+)\}`)
	var missing []string
	filled := param.ReplaceAllStringFunc(string(text), func(m string) string {
		name := param.FindStringSubmatch(m)[1]
		v, ok := samples[name]
		if !ok {
			missing = append(missing, name)
		}
		return `"` + v + `"`
	})
	if len(missing) > 0 {
		t.Fatalf("no sample value for the parameters %v: add one to this test", missing)
	}
	filled = strings.Replace(filled, "ko://github.com/example/hello",
		"europe-west1-docker.pkg.dev/my-project/hello/hello@sha256:"+strings.Repeat("a", 64), 1)
	dir := t.TempDir()
	file := filepath.Join(dir, "service.yaml")
	if err := os.WriteFile(file, []byte(filled), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gcloud, "run", "services", "replace", file, "--region=europe-west1", "--project=my-project", "--quiet")
	// A configuration of its own: no account, nothing written to the home directory.
	cmd.Env = append(os.Environ(), "CLOUDSDK_CONFIG="+filepath.Join(dir, "gcloud"), "CLOUDSDK_CORE_DISABLE_PROMPTS=1")
	out, _ := cmd.CombinedOutput()
	switch {
	case strings.Contains(string(out), "Failed to parse"):
		t.Fatalf("gcloud cannot parse %s:\n%s", manifestPath, out)
	case !strings.Contains(string(out), "You do not currently have an active account selected"):
		t.Fatalf("gcloud did not get as far as the login (what a parsed manifest meets here):\n%s", out)
	}
}
