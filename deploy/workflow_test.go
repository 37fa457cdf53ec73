package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// workflow is the part of .github/workflows/ci.yml these tests read.
type workflow struct {
	Jobs map[string]struct {
		Steps []struct {
			Name string            `yaml:"name"`
			If   string            `yaml:"if"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			Env  map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func loadWorkflow(t *testing.T) (workflow, string) {
	t.Helper()
	b, err := os.ReadFile("../.github/workflows/ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	return w, string(b)
}

// TestCIReleasesEachCommitOnce: a push to main and a v* tag on the same commit
// both publish, but only main releases, under the commit's name, so that a second
// run (a re-run, or the tag's) creates no second release that would repeat the
// canary, the bake and the promotion.
func TestCIReleasesEachCommitOnce(t *testing.T) {
	w, _ := loadWorkflow(t)
	var releases int
	for job, j := range w.Jobs {
		for _, s := range j.Steps {
			if !strings.Contains(s.Run, "make release") {
				continue
			}
			releases++
			if s.If != "github.ref == 'refs/heads/main'" {
				t.Errorf("job %s releases with if: %q, want only from main", job, s.If)
			}
			// commit- and 12 digits: 19 characters, within the 24 that deploy/terraform
			// guarantees a release's name, whatever the pipeline's.
			if !strings.Contains(s.Run, `RELEASE="commit-${GITHUB_SHA::12}" RELEASE_ONCE=1`) {
				t.Errorf("job %s names its release otherwise than after the commit, once:\n%s", job, s.Run)
			}
			if _, ok := s.Env["RELEASE"]; ok || strings.Contains(s.Run, "run_number") || strings.Contains(s.Run, "run_attempt") {
				t.Errorf("job %s names its release after the run, which a second run of the same commit changes", job)
			}
		}
	}
	if releases != 1 {
		t.Errorf("%d steps run make release, want 1", releases)
	}
}

// node24 are the commits of Google's actions known to run on Node 24: the v3
// releases, whose action.yml says `using: 'node24'` (read in each repository at
// that commit, 2026-12); v2 ran on Node 20, which GitHub retires.
var node24 = map[string]string{
	"google-github-actions/auth":         "7c6bc770dae815cd3e89ee6cdf493a5fab2cc093", // v3.0.0
	"google-github-actions/setup-gcloud": "aa5489c8933f4cc7a4f7d45035b3b1440c9c10db", // v3.0.1
}

// TestActionsArePinnedAndGooglesRunOnNode24: every action is pinned by commit,
// and Google's to a commit known to run on Node 24.
func TestActionsArePinnedAndGooglesRunOnNode24(t *testing.T) {
	_, text := loadWorkflow(t)
	matches := regexp.MustCompile(`uses: ([\w.-]+/[\w.-]+)@(\S+)`).FindAllStringSubmatch(text, -1)
	if len(matches) == 0 {
		t.Fatal("no uses: in the workflow")
	}
	for _, m := range matches {
		if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(m[2]) {
			t.Errorf("%s@%s is not pinned to a commit", m[1], m[2])
		}
		if strings.HasPrefix(m[1], "google-github-actions/") && node24[m[1]] != m[2] {
			t.Errorf("%s@%s is not a commit known to run on Node 24 (%v)", m[1], m[2], node24)
		}
	}
}
