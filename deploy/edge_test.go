package deploy

import (
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func TestTheHTTPSProxyHasAModernSSLPolicy(t *testing.T) {
	c := load(t)
	proxy := c.resource(t, "google_compute_target_https_proxy.hello")
	if resourceRef(t, attr(t, proxy, "ssl_policy")) != "google_compute_ssl_policy.hello" {
		t.Fatalf("the HTTPS proxy's ssl_policy is not google_compute_ssl_policy.hello: Google's default allows TLS 1.0")
	}
	policy := c.resource(t, "google_compute_ssl_policy.hello")
	for field, v := range map[string]string{"profile": "tls_profile", "min_tls_version": "tls_min_version"} {
		if rs := refs(attr(t, policy, field)); !slices.Equal(rs, []string{"var." + v}) {
			t.Errorf("the SSL policy's %s = %v, want var.%s", field, rs, v)
		}
	}
	for v, want := range map[string]string{"tls_profile": "MODERN", "tls_min_version": "TLS_1_2"} {
		if got := literal(t, attr(t, c.variables[v], "default")).AsString(); got != want {
			t.Errorf("var.%s defaults to %s, want %s", v, got, want)
		}
	}
	valid := func(name, value string) bool {
		return evaluate(t, attr(t, c.variables[name], "validation", "condition"), map[string]cty.Value{name: cty.StringVal(value)}).True()
	}
	for value, want := range map[string]bool{"MODERN": true, "RESTRICTED": true, "COMPATIBLE": false, "CUSTOM": false, "": false} {
		if got := valid("tls_profile", value); got != want {
			t.Errorf("tls_profile = %q accepted = %v, want %v", value, got, want)
		}
	}
	for value, want := range map[string]bool{"TLS_1_2": true, "TLS_1_3": true, "TLS_1_0": false, "TLS_1_1": false} {
		if got := valid("tls_min_version", value); got != want {
			t.Errorf("tls_min_version = %q accepted = %v, want %v", value, got, want)
		}
	}
	condition := attr(t, policy, "lifecycle", "precondition", "condition")
	for _, tt := range []struct {
		profile, min string
		want         bool
	}{{"MODERN", "TLS_1_2", true}, {"RESTRICTED", "TLS_1_3", true}, {"MODERN", "TLS_1_3", false}} {
		got := evaluate(t, condition, map[string]cty.Value{"tls_profile": cty.StringVal(tt.profile), "tls_min_version": cty.StringVal(tt.min)})
		if got.True() != tt.want {
			t.Errorf("%s with %s: precondition passes = %v, want %v", tt.profile, tt.min, got.True(), tt.want)
		}
	}
}

func TestNoResourceGrantsAnythingToAllUsers(t *testing.T) {
	c := load(t)
	for addr, b := range c.resources {
		for _, name := range []string{"member", "members"} {
			a, ok := b.Body.Attributes[name]
			if !ok {
				continue
			}
			if src := string(mustSource(t, a.Expr)); strings.Contains(src, "allUsers") || strings.Contains(src, "allAuthenticatedUsers") {
				t.Errorf("%s grants to %s: organisations with Domain Restricted Sharing refuse it; the service turns off its invoker check instead", addr, src)
			}
		}
	}
}

func TestCloudArmorRateLimitsEachClientInFrontOfTheBackendService(t *testing.T) {
	c := load(t)
	backend := c.resource(t, "google_compute_backend_service.hello")
	if got := string(mustSource(t, attr(t, backend, "security_policy"))); got != "one(google_compute_security_policy.edge[*].id)" {
		t.Errorf("the backend service's security_policy = %s, want the Cloud Armor policy", got)
	}
	policy := c.resource(t, "google_compute_security_policy.edge")
	count := attr(t, policy, "count")
	for _, tt := range []struct{ lb, armor bool }{{true, true}, {true, false}, {false, true}} {
		got := evaluate(t, count, map[string]cty.Value{"load_balancer": cty.BoolVal(tt.lb), "cloud_armor": cty.BoolVal(tt.armor)})
		if want := tt.lb && tt.armor; got.Equals(cty.NumberIntVal(1)).True() != want {
			t.Errorf("load_balancer = %v, cloud_armor = %v: %s policies, want one = %v", tt.lb, tt.armor, got.AsBigFloat(), want)
		}
	}
	if !literal(t, attr(t, c.variables["cloud_armor"], "default")).True() {
		t.Errorf("cloud_armor is off by default")
	}
	if d := literal(t, attr(t, c.variables["cloud_armor"], "description")).AsString(); !strings.Contains(d, "USD") {
		t.Errorf("cloud_armor's description %q does not say what it costs", d)
	}
	if got := literal(t, attr(t, policy, "type")).AsString(); got != "CLOUD_ARMOR" {
		t.Errorf("the policy's type = %s, want CLOUD_ARMOR (a backend policy)", got)
	}

	var limit, fallback *hclsyntax.Block
	for _, rule := range policy.Body.Blocks {
		if rule.Type != "rule" {
			continue
		}
		switch literal(t, attr(t, rule, "action")).AsString() {
		case "rate_based_ban":
			limit = rule
		case "allow":
			fallback = rule
		default:
			t.Errorf("a rule at %s does %s", rule.Range(), literal(t, attr(t, rule, "action")).AsString())
		}
	}
	if limit == nil {
		t.Fatalf("no rate_based_ban rule: nothing limits what one client sends")
	}
	if got := stringList(t, attr(t, limit, "match", "config", "src_ip_ranges")); !slices.Equal(got, []string{"*"}) {
		t.Errorf("the rate limit applies to %v, want every client (*)", got)
	}
	options := child(t, limit, "rate_limit_options")
	for field, want := range map[string]string{"conform_action": "allow", "exceed_action": "deny(429)", "enforce_on_key": "IP"} {
		if got := literal(t, attr(t, options, field)).AsString(); got != want {
			t.Errorf("rate_limit_options.%s = %s, want %s", field, got, want)
		}
	}
	for path, v := range map[string]string{
		"rate_limit_threshold.count": "rate_limit_requests", "rate_limit_threshold.interval_sec": "rate_limit_interval_seconds",
		"ban_threshold.count": "rate_limit_ban_requests", "ban_threshold.interval_sec": "rate_limit_ban_interval_seconds",
		"ban_duration_sec": "rate_limit_ban_seconds",
	} {
		if rs := refs(attr(t, options, strings.Split(path, ".")...)); !slices.Equal(rs, []string{"var." + v}) {
			t.Errorf("rate_limit_options.%s = %v, want var.%s", path, rs, v)
		}
	}
	if fallback == nil || !literal(t, attr(t, fallback, "priority")).Equals(cty.NumberIntVal(2147483647)).True() {
		t.Errorf("no default rule (allow, priority 2147483647): Google adds one that Terraform would then fight")
	}

	valid := func(name string, n float64) bool {
		return evaluate(t, attr(t, c.variables[name], "validation", "condition"), map[string]cty.Value{name: cty.NumberFloatVal(n)}).True()
	}
	for name, cases := range map[string]map[float64]bool{
		"rate_limit_requests":             {600: true, 1: true, 0: false, -1: false, 1.5: false, 1000001: false},
		"rate_limit_interval_seconds":     {60: true, 10: true, 3600: true, 45: false, 0: false},
		"rate_limit_ban_requests":         {3000: true, 0: false, 10001: false},
		"rate_limit_ban_interval_seconds": {300: true, 7: false},
		"rate_limit_ban_seconds":          {600: true, 0: false},
		"lb_log_sample_rate":              {1: true, 0.1: true, 0: true, 1.5: false, -0.1: false},
	} {
		for n, want := range cases {
			if got := valid(name, n); got != want {
				t.Errorf("%s = %v accepted = %v, want %v", name, n, got, want)
			}
		}
	}
}

func TestTheLoadBalancerLogsRequests(t *testing.T) {
	c := load(t)
	logs := child(t, c.resource(t, "google_compute_backend_service.hello"), "log_config")
	if rs := refs(attr(t, logs, "sample_rate")); !slices.Equal(rs, []string{"var.lb_log_sample_rate"}) {
		t.Errorf("log_config.sample_rate = %v, want var.lb_log_sample_rate", rs)
	}
	enable := attr(t, logs, "enable")
	for rate, want := range map[float64]bool{1: true, 0.01: true, 0: false} {
		if got := evaluate(t, enable, map[string]cty.Value{"lb_log_sample_rate": cty.NumberFloatVal(rate)}); got.True() != want {
			t.Errorf("lb_log_sample_rate = %v: logging enabled = %v, want %v", rate, got.True(), want)
		}
	}
	if d := literal(t, attr(t, c.variables["lb_log_sample_rate"], "default")); d.AsBigFloat().Sign() <= 0 {
		t.Errorf("lb_log_sample_rate defaults to 0: nothing would be logged")
	}
}

func TestTheRegistryScansWhatItStoresAndDeletesOnlyLongUntaggedImages(t *testing.T) {
	c := load(t)
	repo := c.resource(t, "google_artifact_registry_repository.containers")
	if got := literal(t, attr(t, repo, "format")).AsString(); got != "DOCKER" {
		t.Errorf("the repository's format = %s, want DOCKER", got)
	}
	scanning := attr(t, repo, "vulnerability_scanning_config", "enablement_config")
	if got := evaluate(t, scanning, map[string]cty.Value{"registry_scanning": cty.True}).AsString(); got != "INHERITED" {
		t.Errorf("with registry_scanning, enablement_config = %s, want INHERITED", got)
	}
	if !literal(t, attr(t, c.variables["registry_scanning"], "default")).True() {
		t.Errorf("registry_scanning is off by default")
	}
	api := c.resource(t, "google_project_service.container_scanning")
	if got := literal(t, attr(t, api, "service")).AsString(); got != "containerscanning.googleapis.com" {
		t.Errorf("the service turned on is %s, want containerscanning.googleapis.com", got)
	}
	if dry, ok := repo.Body.Attributes["cleanup_policy_dry_run"]; ok && literal(t, dry.Expr).True() {
		t.Errorf("the cleanup policies only dry-run: nothing would be cleaned up")
	}

	var deletes, keepReleases, keepRecent int
	for _, p := range repo.Body.Blocks {
		if p.Type != "cleanup_policies" {
			continue
		}
		action := literal(t, attr(t, p, "action")).AsString()
		switch {
		case action == "DELETE":
			deletes++
			cond := child(t, p, "condition")
			if got := literal(t, attr(t, cond, "tag_state")).AsString(); got != "UNTAGGED" {
				t.Errorf("a DELETE policy matches tag_state %s, want UNTAGGED only: a tagged image (a release, a signature) must never be deleted", got)
			}
			if _, ok := cond.Body.Attributes["older_than"]; !ok {
				t.Errorf("a DELETE policy has no older_than: an image would be deleted the moment it loses its tag")
			}
		case action == "KEEP" && hasBlock(p, "condition"):
			cond := child(t, p, "condition")
			if literal(t, attr(t, cond, "tag_state")).AsString() == "TAGGED" && slices.Equal(stringList(t, attr(t, cond, "tag_prefixes")), []string{"v"}) {
				keepReleases++
			}
		case action == "KEEP" && hasBlock(p, "most_recent_versions"):
			if n := literal(t, attr(t, p, "most_recent_versions", "keep_count")); n.AsBigFloat().Sign() > 0 {
				keepRecent++
			}
		}
	}
	if deletes != 1 {
		t.Errorf("%d DELETE policies, want 1: untagged images pile up", deletes)
	}
	if keepReleases != 1 || keepRecent != 1 {
		t.Errorf("KEEP policies: %d for tags v*, %d for the most recent versions; want one of each", keepReleases, keepRecent)
	}
}

func hasBlock(b *hclsyntax.Block, name string) bool {
	for _, c := range b.Body.Blocks {
		if c.Type == name {
			return true
		}
	}
	return false
}
