package deploy

import (
	"os"
	"regexp"
	"strconv"
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
			if !strings.Contains(s.Run, `RELEASE="$DELIVERY_PIPELINE-${GITHUB_SHA::12}"`) {
				t.Errorf("job %s names its release otherwise than after the commit:\n%s", job, s.Run)
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

// TestActionsArePinnedAndRunOnNode24: every action is pinned by commit, and
// Google's are at major version 3 or later, which run on Node 24 (their v3
// action.yml: `using: 'node24'`); v2 ran on Node 20, which GitHub retires.
func TestActionsArePinnedAndRunOnNode24(t *testing.T) {
	_, text := loadWorkflow(t)
	uses := regexp.MustCompile(`uses: ([\w.-]+/[\w.-]+)@(\S+)(?: # v(\d+)\S*)?`)
	matches := uses.FindAllStringSubmatch(text, -1)
	if len(matches) == 0 {
		t.Fatal("no uses: in the workflow")
	}
	for _, m := range matches {
		if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(m[2]) {
			t.Errorf("%s@%s is not pinned to a commit", m[1], m[2])
		}
		if strings.HasPrefix(m[1], "google-github-actions/") {
			if major, _ := strconv.Atoi(m[3]); major < 3 {
				t.Errorf("%s is at v%s, which runs on Node 20: want v3 or later (Node 24)", m[1], m[3])
			}
		}
	}
}
