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

// TestGcloudAcceptsTheCommandsReleaseShRuns runs, through the real gcloud, each
// command scripts/release.sh runs and each the docs give for releasing by hand:
// gcloud parses every command's flags and values before it asks for credentials,
// so a misspelt or unknown flag fails here, where a well-formed
// command gets as far as the login. Every `gcloud deploy` command and flag in
// release.sh must be among them.
func TestGcloudAcceptsTheCommandsReleaseShRuns(t *testing.T) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gcloud is not installed; CI's machines have it (Debian: google-cloud-cli)")
		}
		t.Skip("gcloud is not installed")
	}
	manifest, _ := filepath.Abs(manifestPath)
	where := []string{"--delivery-pipeline=hello", "--region=europe-west1"}
	commands := [][]string{
		append([]string{"deploy", "releases", "describe", "r-0123456789ab-2612061200", "--format=value(description)"}, where...),
		append([]string{"deploy", "releases", "create", "r-0123456789ab-2612061200", "--from-run-manifest=" + manifest,
			"--gcs-source-staging-dir=gs://my-project-hello-releases/source", "--description=europe-west1-docker.pkg.dev/p/c/hello@sha256:" + strings.Repeat("a", 64)}, where...),
		append([]string{"deploy", "rollouts", "list", "--release=r-0123456789ab-2612061200", "--format=value(targetId,state)"}, where...),
		// RELEASES.md and docs/deploying.md, by hand.
		append([]string{"deploy", "releases", "promote", "--release=hello-first", "--to-target=hello-others"}, where...),
		append([]string{"deploy", "targets", "rollback", "hello-others"}, where...),
	}

	script, err := os.ReadFile("../scripts/release.sh")
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(func() []string {
		var s []string
		for _, c := range commands {
			s = append(s, strings.Join(c, " "))
		}
		return s
	}(), "\n")
	// release.sh's commands span lines joined by backslashes.
	text := strings.ReplaceAll(string(script), "\\\n", " ")
	for _, line := range regexp.MustCompile(`(?m)gcloud (deploy [a-z-]+ [a-z-]+)([^\n]*)`).FindAllStringSubmatch(text, -1) {
		if !strings.Contains(all, line[1]) {
			t.Errorf("release.sh runs gcloud %s, which this test does not", line[1])
		}
		for _, flag := range regexp.MustCompile(`--[a-z-]+`).FindAllString(line[2], -1) {
			if !strings.Contains(all, flag+"=") {
				t.Errorf("release.sh passes gcloud %s %s, which this test does not", line[1], flag)
			}
		}
	}

	dir := t.TempDir()
	for _, c := range commands {
		cmd := exec.Command(gcloud, c...)
		cmd.Env = append(os.Environ(), "CLOUDSDK_CONFIG="+filepath.Join(dir, "gcloud"), "CLOUDSDK_CORE_DISABLE_PROMPTS=1", "CLOUDSDK_CORE_PROJECT=my-project")
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "You do not currently have an active account selected") {
			t.Errorf("gcloud %s did not get as far as the login:\n%s", strings.Join(c, " "), out)
		}
	}
}
