package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// These tests run scripts/release.sh (make release) as a person or CI would, with
// gcloud replaced by a script that answers as Cloud Deploy would and records what
// it was asked. What they check happens before the image is verified, so no cosign
// is needed; the end-to-end test (e2e/sign_test.go) releases a signed image.

const testImage = "europe-west1-docker.pkg.dev/p/containers/hello@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeGcloud writes a gcloud that answers `deploy releases describe` with the
// description in file "existing", or fails with the error in file "describe-error",
// or else with NOT_FOUND as gcloud words it, `deploy rollouts list`
// with the next file rollouts.N (the last one again once they run out), and
// records every call in "calls".
func fakeGcloud(t *testing.T) (bin, dir string) {
	t.Helper()
	dir = t.TempDir()
	bin = filepath.Join(dir, "gcloud")
	script := `#!/bin/sh
echo "$*" >> ` + dir + `/calls
case "$1 $2 $3" in
"deploy releases describe")
  [ -f ` + dir + `/describe-error ] && { cat ` + dir + `/describe-error >&2; exit 1; }
  [ -f ` + dir + `/existing ] || { echo "ERROR: (gcloud.deploy.releases.describe) NOT_FOUND: Resource '$4' was not found" >&2; exit 1; }
  cat ` + dir + `/existing ;;
"deploy rollouts list")
  n=$(cat ` + dir + `/polls 2>/dev/null || echo 0)
  [ -f ` + dir + `/rollouts.$((n + 1)) ] && n=$((n + 1))
  echo $n > ` + dir + `/polls
  [ "$(cat ` + dir + `/rollouts.$n)" = FAIL ] && { echo "ERROR: UNAVAILABLE" >&2; exit 1; }
  cat ` + dir + `/rollouts.$n ;;
esac
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, dir
}

// releaseScript runs scripts/release.sh with args and env (over a pipeline's
// whereabouts, and the fake gcloud first on PATH, as a real one would be found)
// and returns its output and error.
func releaseScript(t *testing.T, gcloud string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"../scripts/release.sh"}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(gcloud)+string(os.PathListSeparator)+os.Getenv("PATH"), "TERRAFORM_BIN=false",
		"DELIVERY_PIPELINE=hello", "DELIVERY_REGION=europe-west1", "RELEASE_STAGING_DIR=gs://p-hello-releases/source", "WAIT_POLL=0")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestReleaseNamesLeaveRoomForTheRolloutsName(t *testing.T) {
	t.Parallel()
	t.Run("a RELEASE too long for the pipeline's targets is refused", func(t *testing.T) {
		t.Parallel()
		gcloud, dir := fakeGcloud(t)
		name := "hello-" + strings.Repeat("a", 28) // 34 characters
		out, err := releaseScript(t, gcloud, []string{"IMAGE=" + testImage, "RELEASE=" + name, "RELEASE_NAME_MAX=33"})
		if err == nil || !strings.Contains(out, "RELEASE="+name+" has 34 characters, at most 33 here") {
			t.Errorf("release.sh with a 34-character RELEASE where 33 fit: %v\n%s", err, out)
		}
		if calls, _ := os.ReadFile(filepath.Join(dir, "calls")); len(calls) > 0 {
			t.Errorf("gcloud was called: %s", calls)
		}
	})
	t.Run("the default name is shortened to fit", func(t *testing.T) {
		t.Parallel()
		gcloud, dir := fakeGcloud(t)
		// The release exists already, of this image: release.sh stops there and
		// says which name it chose.
		os.WriteFile(filepath.Join(dir, "existing"), []byte(testImage+"\n"), 0o644)
		for _, max := range []int{33, 40, 24, 21, 20} {
			out, err := releaseScript(t, gcloud, []string{"IMAGE=" + testImage, "RELEASE_NAME_MAX=" + strconv.Itoa(max)})
			m := regexp.MustCompile(`release: (\S+) exists already`).FindStringSubmatch(out)
			if err != nil || m == nil {
				t.Fatalf("release.sh with RELEASE_NAME_MAX=%d: %v\n%s", max, err, out)
			}
			name := m[1]
			// The first rollout on this pipeline's longest target, as gcloud names it.
			rollout := name + "-to-" + strings.Repeat("t", 63-len("-to--0001")-max) + "-0001"
			if len(name) > max || len(rollout) > 63 || !regexp.MustCompile(`^r-0123456[0-9a-f]{0,5}-\d{10}$`).MatchString(name) {
				t.Errorf("RELEASE_NAME_MAX=%d: default name %q (%d characters), its rollout %d", max, name, len(name), len(rollout))
			}
		}
	})
	t.Run("a pipeline whose targets leave too little room says what to do", func(t *testing.T) {
		t.Parallel()
		gcloud, _ := fakeGcloud(t)
		out, err := releaseScript(t, gcloud, []string{"IMAGE=" + testImage, "RELEASE_NAME_MAX=19"})
		if err == nil || !strings.Contains(out, "does not fit in 19 characters") || !strings.Contains(out, "set RELEASE to a shorter name") {
			t.Errorf("release.sh where 19 characters fit: %v\n%s", err, out)
		}

	})
	t.Run("without the output, the length Terraform guarantees", func(t *testing.T) {
		t.Parallel()
		gcloud, _ := fakeGcloud(t)
		out, err := releaseScript(t, gcloud, []string{"IMAGE=" + testImage, "RELEASE=hello-" + strings.Repeat("a", 19)})
		if err == nil || !strings.Contains(out, "at most 24 here") {
			t.Errorf("release.sh with a 25-character RELEASE and no output to read: %v\n%s", err, out)
		}
	})
}

// Where nothing is deployed yet, Terraform has no state: its outputs are absent and
// release.sh uses what the environment and its defaults say. The real terraform runs,
// in an empty directory (terraform -raw prints a warning and succeeds there).
func TestReleaseWithoutTerraformState(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	terraform := filepath.Join(t.TempDir(), "terraform")
	// release.sh passes -chdir=deploy/terraform first; the empty directory replaces it.
	script := "#!/bin/sh\nshift\nexec go tool -modfile=" + root + "/tools/terraform/go.mod terraform -chdir=" + empty + " \"$@\"\n"
	if err := os.WriteFile(terraform, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	gcloud, dir := fakeGcloud(t)
	os.WriteFile(filepath.Join(dir, "existing"), []byte(testImage+"\n"), 0o644)
	out, err := releaseScript(t, gcloud, []string{"IMAGE=" + testImage, "TERRAFORM_BIN=" + terraform})
	want := regexp.MustCompile(`release: r-0123456789a-[0-9]{10} exists already`) // 24 characters: the shortest room
	if err != nil || !want.MatchString(out) {
		t.Errorf("release.sh with no Terraform state: %v\n%s\nwant it to use the default name's shortest length", err, out)
	}
}

// TestReleaseScriptAssumesWhatTerraformGuarantees: release.sh falls back on the
// shortest room for a release name that deploy/terraform lets a pipeline have.
func TestReleaseScriptAssumesWhatTerraformGuarantees(t *testing.T) {
	c := load(t)
	script, err := os.ReadFile("../scripts/release.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^min_release_name=(\d+)$`).FindSubmatch(script)
	if m == nil {
		t.Fatal("scripts/release.sh sets no min_release_name")
	}
	want, _ := literal(t, c.locals["release_name_min_length"]).AsBigFloat().Int64()
	if got, _ := strconv.Atoi(string(m[1])); int64(got) != want {
		t.Errorf("release.sh assumes %d characters, deploy/terraform guarantees %d", got, want)
	}
	if got := string(mustSource(t, c.locals["release_name_max_length"])); !strings.Contains(got, `63 - length("-to-") - length("-0001")`) {
		t.Errorf("local.release_name_max_length = %s: not gcloud's RELEASE-to-TARGET-0001 within 63", got)
	}
	// Evaluated as a plan would, with the default regions (RELEASES.md's 33: the
	// longest target is hello-asia-northeast1, 21 characters) and with a longer one.
	for _, tt := range []struct {
		regions []string
		want    int64
	}{
		{nil, 33},
		{[]string{"europe-west1", "northamerica-northeast1"}, 25},
	} {
		vars := map[string]cty.Value{}
		if tt.regions != nil {
			vars["regions"] = strs(tt.regions...)
			vars["canary_region"] = cty.StringVal(tt.regions[0])
		}
		p := newPlan(t, c, vars)
		v, ok := p.local("release_name_max_length")
		if !ok {
			t.Fatalf("regions %v: release_name_max_length: %v", tt.regions, p.localErr["release_name_max_length"])
		}
		if got, _ := v.AsBigFloat().Int64(); got != tt.want {
			t.Errorf("regions %v: release_name_max_length = %d, want %d", tt.regions, got, tt.want)
		}
	}
	if got := string(mustSource(t, c.locals["target_ids"])); !strings.Contains(got, "google_clouddeploy_target.region") || !strings.Contains(got, "google_clouddeploy_target.others") {
		t.Errorf("local.target_ids = %s: not every target a release's rollouts go to", got)
	}
}

func TestOneReleasePerName(t *testing.T) {
	t.Parallel()
	t.Run("the same image again: nothing to create", func(t *testing.T) {
		t.Parallel()
		gcloud, dir := fakeGcloud(t)
		os.WriteFile(filepath.Join(dir, "existing"), []byte(testImage+"\n"), 0o644)
		out, err := releaseScript(t, gcloud, []string{"IMAGE=" + testImage, "RELEASE=hello-abc"})
		calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
		if err != nil || !strings.Contains(out, "hello-abc exists already, of "+testImage+": nothing to create") || strings.Contains(string(calls), "releases create") {
			t.Errorf("release.sh of a release that exists: %v\n%s\ngcloud was asked:\n%s", err, out, calls)
		}
	})
	t.Run("another image under a name taken, once only: nothing to create", func(t *testing.T) {
		t.Parallel()
		gcloud, dir := fakeGcloud(t)
		other := strings.Replace(testImage, "0123", "3210", 1)
		os.WriteFile(filepath.Join(dir, "existing"), []byte(other+"\n"), 0o644)
		out, err := releaseScript(t, gcloud, []string{"IMAGE=" + testImage, "RELEASE=commit-abc", "RELEASE_ONCE=1"})
		calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
		if err != nil || !strings.Contains(out, "commit-abc exists already, of "+other+": nothing to create") || strings.Contains(string(calls), "releases create") {
			t.Errorf("release.sh RELEASE_ONCE=1 of a release that exists of another image: %v\n%s\ngcloud was asked:\n%s", err, out, calls)
		}
	})
	t.Run("another image under a name taken: refused", func(t *testing.T) {
		t.Parallel()
		gcloud, dir := fakeGcloud(t)
		os.WriteFile(filepath.Join(dir, "existing"), []byte(strings.Replace(testImage, "0123", "3210", 1)+"\n"), 0o644)
		out, err := releaseScript(t, gcloud, []string{"IMAGE=" + testImage, "RELEASE=hello-abc"})
		calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
		if err == nil || !strings.Contains(out, "release hello-abc exists already") || strings.Contains(string(calls), "releases create") {
			t.Errorf("release.sh under a name another image holds: %v\n%s\ngcloud was asked:\n%s", err, out, calls)
		}
	})
}

// A describe that fails for any reason but NOT_FOUND says nothing of whether the
// release exists: release.sh stops and shows gcloud's error, rather than go on to
// create a release it may already have.
// NOT_FOUND, and only that, lets it create the release.
func TestReleaseStopsWhenItCannotTellWhetherTheReleaseExists(t *testing.T) {
	t.Parallel()
	t.Run("describe denied: stopped, gcloud's error shown", func(t *testing.T) {
		t.Parallel()
		gcloud, dir := fakeGcloud(t)
		denied := "ERROR: (gcloud.deploy.releases.describe) PERMISSION_DENIED: Permission 'clouddeploy.releases.get' denied on 'projects/p/locations/europe-west1/deliveryPipelines/hello/releases/hello-abc'"
		os.WriteFile(filepath.Join(dir, "describe-error"), []byte(denied+"\n"), 0o644)
		out, err := releaseScript(t, gcloud, []string{"IMAGE=" + testImage, "RELEASE=hello-abc", "ALLOW_UNSIGNED=1"})
		calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
		if err == nil || !strings.Contains(out, denied) || !strings.Contains(out, "cannot tell whether release hello-abc exists") || strings.Contains(out, "verify") || strings.Contains(string(calls), "releases create") {
			t.Errorf("release.sh when describe is denied: %v\n%s\ngcloud was asked:\n%s", err, out, calls)
		}
	})
	t.Run("NOT_FOUND: created", func(t *testing.T) {
		t.Parallel()
		gcloud, dir := fakeGcloud(t)
		out, err := releaseScript(t, gcloud, []string{"IMAGE=" + testImage, "RELEASE=hello-abc", "ALLOW_UNSIGNED=1"})
		calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
		if err != nil || !strings.Contains(out, "release: created hello-abc") || !strings.Contains(string(calls), "deploy releases create hello-abc") {
			t.Errorf("release.sh of a release that does not exist: %v\n%s\ngcloud was asked:\n%s", err, out, calls)
		}
	})
}

func TestReleaseWaitFollowsTheRolloutsToTheirEnd(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		polls    []string
		wantErr  bool
		wantSaid []string
	}{
		{"the canary region's rollout succeeds", []string{
			"hello-europe-west1\tIN_PROGRESS\n",
			"hello-europe-west1\tIN_PROGRESS\n",
			"hello-europe-west1\tSUCCEEDED\n",
		}, false, []string{"hello-europe-west1\tIN_PROGRESS", "hello-europe-west1\tSUCCEEDED", "every rollout of r1 succeeded"}},
		{"a rollout fails", []string{
			"hello-europe-west1\tIN_PROGRESS\n",
			"hello-europe-west1\tFAILED\n",
		}, true, []string{"a rollout of r1 did not succeed"}},
		{"gcloud fails once: asked again", []string{
			"hello-europe-west1\tIN_PROGRESS\n",
			"FAIL",
			"hello-europe-west1\tSUCCEEDED\n",
		}, false, []string{"could not list the rollouts", "every rollout of r1 succeeded"}},
		{"no rollout yet, then one", []string{
			"",
			"hello-europe-west1\tPENDING\n",
			"hello-europe-west1\tSUCCEEDED\n",
		}, false, []string{"hello-europe-west1\tPENDING", "every rollout of r1 succeeded"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gcloud, dir := fakeGcloud(t)
			for i, p := range tt.polls {
				os.WriteFile(filepath.Join(dir, "rollouts."+strconv.Itoa(i+1)), []byte(p), 0o644)
			}
			out, err := releaseScript(t, gcloud, []string{"RELEASE=r1"}, "wait")
			if (err != nil) != tt.wantErr {
				t.Errorf("release.sh wait: %v, want an error: %v\n%s", err, tt.wantErr, out)
			}
			for _, want := range tt.wantSaid {
				if !strings.Contains(out, want) {
					t.Errorf("release.sh wait said:\n%s\nwant %q", out, want)
				}
			}
			// A state is said once, not at every poll.
			if strings.Count(out, "IN_PROGRESS") > 1 {
				t.Errorf("release.sh wait repeated a state:\n%s", out)
			}
		})
	}
	gcloud, _ := fakeGcloud(t)
	if out, err := releaseScript(t, gcloud, []string{"WAIT_TIMEOUT=0"}, "wait"); err == nil || !strings.Contains(out, "set RELEASE=NAME") {
		t.Errorf("release.sh wait without RELEASE: %v\n%s", err, out)
	}
	if out, err := releaseScript(t, gcloud, []string{"RELEASE=r1", "WAIT_POLL=5s"}, "wait"); err == nil || !strings.Contains(out, "WAIT_POLL=5s: want a number of seconds") {
		t.Errorf("release.sh wait WAIT_POLL=5s: %v\n%s", err, out)
	}
	// WAIT=1 waits for a release that exists already too (a re-run).
	gcloud, dir := fakeGcloud(t)
	os.WriteFile(filepath.Join(dir, "existing"), []byte(testImage+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "rollouts.1"), []byte("hello-europe-west1\tSUCCEEDED\n"), 0o644)
	if out, err := releaseScript(t, gcloud, []string{"IMAGE=" + testImage, "RELEASE=r1", "WAIT=1"}); err != nil || !strings.Contains(out, "every rollout of r1 succeeded") {
		t.Errorf("release.sh WAIT=1 of a release that exists: %v\n%s", err, out)
	}
}

// TestTheDocsPromoteOnlyAfterWaiting: with --to-target, gcloud does not check that a
// release's rollout on the current stage has succeeded (promote_util.py), so every
// promotion the docs give comes after a wait for that rollout.
func TestTheDocsPromoteOnlyAfterWaiting(t *testing.T) {
	for _, doc := range []string{"../RELEASES.md", "../docs/deploying.md", "../README.md"} {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		waited := false
		promotions := 0
		for _, line := range strings.Split(string(text), "\n") {
			switch {
			case strings.HasPrefix(line, "```"):
				waited = false // each code block on its own
			case strings.HasPrefix(line, "$ ") && (strings.Contains(line, "WAIT=1") || strings.Contains(line, "make release-wait")):
				waited = true
			case strings.HasPrefix(line, "$ ") && strings.Contains(line, "gcloud deploy releases promote"):
				promotions++
				if !waited {
					t.Errorf("%s promotes before waiting for the rollout: %s", doc, line)
				}
			}
		}
		if promotions == 0 {
			t.Errorf("%s gives no promotion to check", doc)
		}
	}
}
