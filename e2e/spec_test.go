package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// spec is an OCI runtime config.json, kept as generic JSON so that every field
// umoci wrote survives the edits.
type spec map[string]any

func readSpec(t *testing.T, bundle string) spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	return s
}

func (s spec) write(t *testing.T, bundle string) {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bundle, "config.json"), b)
}

// object returns the JSON object at key.
func (s spec) object(t *testing.T, key string) map[string]any {
	t.Helper()
	o, ok := s[key].(map[string]any)
	if !ok {
		t.Fatalf("config.json has no %q object", key)
	}
	return o
}

func (s spec) set(t *testing.T, object, key string, v any) {
	t.Helper()
	s.object(t, object)[key] = v
}

func (s spec) appendEnv(t *testing.T, vars ...string) {
	t.Helper()
	p := s.object(t, "process")
	env, _ := p["env"].([]any)
	for _, v := range vars {
		env = append(env, v)
	}
	p["env"] = env
}

// dropNamespace removes a namespace, so that the container shares the host's.
func (s spec) dropNamespace(t *testing.T, kind string) {
	t.Helper()
	linux := s.object(t, "linux")
	namespaces, _ := linux["namespaces"].([]any)
	var kept []any
	for _, n := range namespaces {
		if m, _ := n.(map[string]any); m["type"] != kind {
			kept = append(kept, n)
		}
	}
	if len(kept) == len(namespaces) {
		t.Fatalf("config.json has no %s namespace to drop", kind)
	}
	linux["namespaces"] = kept
}

// uid is the user id the container's process runs as.
func (s spec) uid(t *testing.T) int {
	t.Helper()
	user, _ := s.object(t, "process")["user"].(map[string]any)
	uid, ok := user["uid"].(float64)
	if !ok {
		t.Fatalf("config.json has no process.user.uid")
	}
	return int(uid)
}
