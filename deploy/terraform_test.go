// Package deploy tests the Terraform in terraform/ without providers, which cannot
// be downloaded where these tests run: it parses the HCL and checks the wiring
// that matters, following references from resource to resource.
package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// config is the parsed Terraform: blocks by kind and name.
type config struct {
	resources map[string]*hclsyntax.Block // "TYPE.NAME"
	variables map[string]*hclsyntax.Block
	outputs   map[string]*hclsyntax.Block
	locals    map[string]hclsyntax.Expression
	checks    []*hclsyntax.Block
}

func load(t *testing.T) config {
	t.Helper()
	files, err := filepath.Glob("terraform/*.tf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no terraform/*.tf: %v", err)
	}
	c := config{resources: map[string]*hclsyntax.Block{}, variables: map[string]*hclsyntax.Block{}, outputs: map[string]*hclsyntax.Block{}, locals: map[string]hclsyntax.Expression{}}
	p := hclparse.NewParser()
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := p.ParseHCL(src, name)
		if diags.HasErrors() {
			t.Fatalf("parsing %s: %v", name, diags)
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			switch b.Type {
			case "resource":
				c.resources[b.Labels[0]+"."+b.Labels[1]] = b
			case "variable":
				c.variables[b.Labels[0]] = b
			case "output":
				c.outputs[b.Labels[0]] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					c.locals[name] = a.Expr
				}
			case "check":
				c.checks = append(c.checks, b)
			}
		}
	}
	return c
}

// resource returns the resource TYPE.NAME.
func (c config) resource(t *testing.T, addr string) *hclsyntax.Block {
	t.Helper()
	b, ok := c.resources[addr]
	if !ok {
		t.Fatalf("no resource %s", addr)
	}
	return b
}

// ofType returns the names of the resources of one type.
func (c config) ofType(typ string) []string {
	var names []string
	for addr := range c.resources {
		if strings.HasPrefix(addr, typ+".") {
			names = append(names, addr)
		}
	}
	slices.Sort(names)
	return names
}

// attr returns the attribute at path (blocks, then the attribute's name) in b.
func attr(t *testing.T, b *hclsyntax.Block, path ...string) hclsyntax.Expression {
	t.Helper()
	inner := b
	for _, name := range path[:len(path)-1] {
		inner = child(t, inner, name)
	}
	a, ok := inner.Body.Attributes[path[len(path)-1]]
	if !ok {
		t.Fatalf("%s has no %s", label(b), strings.Join(path, "."))
	}
	return a.Expr
}

// child returns the first block of type name in b.
func child(t *testing.T, b *hclsyntax.Block, name string) *hclsyntax.Block {
	t.Helper()
	for _, c := range b.Body.Blocks {
		if c.Type == name {
			return c
		}
	}
	t.Fatalf("%s has no %s block", label(b), name)
	return nil
}

// stringList returns the strings of a literal list.
func stringList(t *testing.T, e hclsyntax.Expression) []string {
	t.Helper()
	var out []string
	for it := literal(t, e).ElementIterator(); it.Next(); {
		_, v := it.Element()
		out = append(out, v.AsString())
	}
	return out
}

func label(b *hclsyntax.Block) string { return b.Type + " " + strings.Join(b.Labels, ".") }

// literal returns the value of an expression that needs no variables.
func literal(t *testing.T, e hclsyntax.Expression) cty.Value {
	t.Helper()
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("expression at %s is not a literal: %v", e.Range(), diags)
	}
	return v
}

// refs returns the references in e as strings such as "var.image" or
// "google_cloud_run_v2_service.hello".
func refs(e hclsyntax.Expression) []string {
	var out []string
	for _, tr := range e.Variables() {
		parts := []string{tr.RootName()}
		for _, step := range tr[1:] {
			if a, ok := step.(hcl.TraverseAttr); ok {
				parts = append(parts, a.Name)
			} else {
				break
			}
		}
		out = append(out, strings.Join(parts, "."))
	}
	return out
}

// refersTo reports whether e refers to prefix (e.g. "var.regions" or
// "google_compute_url_map.https").
func refersTo(e hclsyntax.Expression, prefix string) bool {
	for _, r := range refs(e) {
		if r == prefix || strings.HasPrefix(r, prefix+".") {
			return true
		}
	}
	return false
}

// resourceRef returns the TYPE.NAME a single-reference expression points at.
func resourceRef(t *testing.T, e hclsyntax.Expression) string {
	t.Helper()
	rs := refs(e)
	if len(rs) != 1 {
		t.Fatalf("expression at %s refers to %v, want exactly one resource", e.Range(), rs)
	}
	parts := strings.Split(rs[0], ".")
	if len(parts) < 2 {
		t.Fatalf("expression at %s refers to %s, not a resource", e.Range(), rs[0])
	}
	return parts[0] + "." + parts[1]
}

// defaultRegions evaluates the default of var.regions.
func (c config) defaultRegions(t *testing.T) []string {
	t.Helper()
	return stringList(t, attr(t, c.variables["regions"], "default"))
}

func TestDefaultRegions(t *testing.T) {
	c := load(t)
	got := c.defaultRegions(t)
	want := []string{"europe-west1", "us-east1", "us-west1", "asia-northeast1"}
	if !slices.Equal(got, want) {
		t.Errorf("var.regions default = %v, want %v", got, want)
	}
}

// local returns the expression of local.name.
func (c config) local(t *testing.T, name string) hclsyntax.Expression {
	t.Helper()
	e, ok := c.locals[name]
	if !ok {
		t.Fatalf("no local.%s", name)
	}
	return e
}

func TestEveryRegionGetsANEGThatIsABackend(t *testing.T) {
	c := load(t)
	neg := c.resource(t, "google_compute_region_network_endpoint_group.hello")
	backend := c.resource(t, "google_compute_backend_service.hello")

	// The NEGs are one per region, in the region, pointing at the service Cloud
	// Deploy runs there, under the manifest's name.
	if !refersTo(attr(t, neg, "for_each"), "local.lb_neg") {
		t.Errorf("the NEG's for_each is not local.lb_neg")
	}
	if rs := refs(c.local(t, "lb_neg")); !slices.Contains(rs, "local.regions") || !slices.Contains(rs, "var.load_balancer") {
		t.Errorf("local.lb_neg refers to %v, want local.regions when var.load_balancer", rs)
	}
	if rs := refs(attr(t, neg, "region")); !slices.Equal(rs, []string{"each.key"}) {
		t.Errorf("the NEG's region = %v, want each.key", rs)
	}
	if v := literal(t, attr(t, neg, "network_endpoint_type")); v.AsString() != "SERVERLESS" {
		t.Errorf("the NEG's type = %s, want SERVERLESS", v.AsString())
	}
	if rs := refs(attr(t, neg, "cloud_run", "service")); !slices.Equal(rs, []string{"local.service"}) {
		t.Errorf("the NEG's cloud_run.service = %v, want local.service (the manifest's name)", rs)
	}

	// Every NEG is a backend: a dynamic backend block over all NEGs.
	var dyn *hclsyntax.Block
	for _, b := range backend.Body.Blocks {
		if b.Type == "dynamic" && b.Labels[0] == "backend" {
			dyn = b
		}
		if b.Type == "backend" {
			t.Errorf("the backend service lists a backend by hand at %s; with a list of regions, one would be missed", b.Range())
		}
	}
	if dyn == nil {
		t.Fatalf("the backend service has no dynamic backend block")
	}
	if !refersTo(attr(t, dyn, "for_each"), "google_compute_region_network_endpoint_group.hello") {
		t.Errorf("the backends are not for_each over all NEGs")
	}
	if rs := refs(attr(t, dyn, "content", "group")); !slices.Equal(rs, []string{"backend.value.id"}) {
		t.Errorf("the backend group = %v, want backend.value.id", rs)
	}
	if v := literal(t, attr(t, backend, "load_balancing_scheme")); v.AsString() != "EXTERNAL_MANAGED" {
		t.Errorf("the backend service's scheme = %s, want EXTERNAL_MANAGED", v.AsString())
	}
	if v := literal(t, attr(t, backend, "outlier_detection", "max_ejection_percent")); v.AsBigFloat().Sign() <= 0 {
		t.Errorf("outlier detection ejects nothing")
	}
}

func TestHTTPSAndPort80Redirect(t *testing.T) {
	c := load(t)
	rules := c.ofType("google_compute_global_forwarding_rule")
	ports := map[string]*hclsyntax.Block{}
	for _, addr := range rules {
		b := c.resource(t, addr)
		ports[literal(t, attr(t, b, "port_range")).AsString()] = b
		if v := literal(t, attr(t, b, "load_balancing_scheme")); v.AsString() != "EXTERNAL_MANAGED" {
			t.Errorf("%s scheme = %s, want EXTERNAL_MANAGED (both rules share one address)", addr, v.AsString())
		}
		if resourceRef(t, attr(t, b, "ip_address")) != "google_compute_global_address.hello" {
			t.Errorf("%s does not use the one global address", addr)
		}
	}
	if len(ports) != 2 || ports["443"] == nil || ports["80"] == nil {
		t.Fatalf("forwarding rules on ports %v, want 443 and 80", maps(ports))
	}

	// 443: HTTPS proxy -> URL map -> the backend service, with the managed certificate.
	proxy := c.resource(t, resourceRef(t, attr(t, ports["443"], "target")))
	if proxy.Labels[0] != "google_compute_target_https_proxy" {
		t.Fatalf("port 443 targets %s, want an HTTPS proxy", label(proxy))
	}
	urlMap := c.resource(t, resourceRef(t, attr(t, proxy, "url_map")))
	if resourceRef(t, attr(t, urlMap, "default_service")) != "google_compute_backend_service.hello" {
		t.Errorf("the HTTPS URL map does not send to the backend service")
	}
	cert := c.resource(t, resourceRef(t, attr(t, proxy, "ssl_certificates")))
	if rs := refs(attr(t, cert, "managed", "domains")); !slices.Equal(rs, []string{"var.domain"}) {
		t.Errorf("the managed certificate's domains = %v, want [var.domain]", rs)
	}

	// 80: HTTP proxy -> a URL map that only redirects to https.
	proxy = c.resource(t, resourceRef(t, attr(t, ports["80"], "target")))
	if proxy.Labels[0] != "google_compute_target_http_proxy" {
		t.Fatalf("port 80 targets %s, want an HTTP proxy", label(proxy))
	}
	urlMap = c.resource(t, resourceRef(t, attr(t, proxy, "url_map")))
	if !literal(t, attr(t, urlMap, "default_url_redirect", "https_redirect")).True() {
		t.Errorf("port 80's URL map does not redirect to https")
	}
	if _, ok := urlMap.Body.Attributes["default_service"]; ok {
		t.Errorf("port 80's URL map has a default_service: plain http would reach the service")
	}
}

func TestRuntimeServiceAccountHasNoRoles(t *testing.T) {
	c := load(t)
	params := c.local(t, "deploy_parameters").(*hclsyntax.ObjectConsExpr)
	found := false
	for _, item := range params.Items {
		if key := literal(t, item.KeyExpr); key.AsString() == "runtime_service_account" {
			found = true
			if resourceRef(t, item.ValueExpr) != "google_service_account.runtime" {
				t.Errorf("the runtime_service_account parameter is not google_service_account.runtime's")
			}
		}
	}
	if !found {
		t.Fatalf("local.deploy_parameters gives no runtime_service_account, so the service would run as the Compute Engine default account (Editor)")
	}
	for addr, b := range c.resources {
		if !strings.Contains(addr, "_iam_") {
			continue
		}
		if m, ok := b.Body.Attributes["member"]; ok && refersTo(m.Expr, "google_service_account.runtime") {
			t.Errorf("%s grants a role to the runtime service account", addr)
		}
		if m, ok := b.Body.Attributes["members"]; ok && refersTo(m.Expr, "google_service_account.runtime") {
			t.Errorf("%s grants a role to the runtime service account", addr)
		}
	}
}

func TestOutputs(t *testing.T) {
	c := load(t)
	for name, from := range map[string]string{
		"load_balancer_ip":    "google_compute_global_address.hello",
		"delivery_pipeline":   "google_clouddeploy_delivery_pipeline.hello",
		"delivery_region":     "var.delivery_region",
		"release_staging_dir": "google_storage_bucket.releases",
	} {
		out, ok := c.outputs[name]
		if !ok {
			t.Errorf("no %s output", name)
			continue
		}
		if !refersTo(attr(t, out, "value"), from) {
			t.Errorf("output %s does not come from %s", name, from)
		}
	}
}

func maps(m map[string]*hclsyntax.Block) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// evaluate evaluates e with var set to vars and the functions validations use.
func evaluate(t *testing.T, e hclsyntax.Expression, vars map[string]cty.Value) cty.Value {
	t.Helper()
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)},
		Functions: terraformFunctions,
	}
	v, diags := e.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("evaluating %s: %v", e.Range(), diags)
	}
	return v
}

func TestFailoverNeedsAMinimumInstance(t *testing.T) {
	c := load(t)
	others := c.resource(t, "google_clouddeploy_target.others")
	var condition hclsyntax.Expression
	var message string
	for _, b := range child(t, others, "lifecycle").Body.Blocks {
		if b.Type == "precondition" && refersTo(attr(t, b, "condition"), "var.failover") {
			condition, message = attr(t, b, "condition"), literal(t, attr(t, b, "error_message")).AsString()
		}
	}
	if condition == nil {
		t.Fatalf("no precondition on var.failover")
	}
	for _, tt := range []struct {
		failover bool
		min      int64
		want     bool
	}{{true, 1, true}, {true, 3, true}, {true, 0, false}, {false, 0, true}} {
		got := evaluate(t, condition, map[string]cty.Value{"failover": cty.BoolVal(tt.failover), "min_instances": cty.NumberIntVal(tt.min)})
		if got.True() != tt.want {
			t.Errorf("failover = %v, min_instances = %d: precondition passes = %v, want %v", tt.failover, tt.min, got.True(), tt.want)
		}
	}
	if !strings.Contains(message, "min_instances") {
		t.Errorf("precondition message %q does not name min_instances", message)
	}
	valid := attr(t, c.variables["min_instances"], "validation", "condition")
	for min, want := range map[float64]bool{0: true, 1: true, -1: false, 1.5: false} {
		if got := evaluate(t, valid, map[string]cty.Value{"min_instances": cty.NumberFloatVal(min)}); got.True() != want {
			t.Errorf("min_instances = %v accepted = %v, want %v", min, got.True(), want)
		}
	}
	if d := literal(t, attr(t, c.variables["min_instances"], "default")); d.AsBigFloat().Sign() <= 0 {
		t.Errorf("min_instances defaults to 0; service health needs 1 in every region")
	}
}

func TestRegionsNeedAtLeastTwo(t *testing.T) {
	c := load(t)
	condition := attr(t, c.variables["regions"], "validation", "condition")
	for _, tt := range []struct {
		regions cty.Value
		want    bool
	}{
		{strs("europe-west1", "us-east1"), true},
		{strs("europe-west1"), false},
		{strs(), false},
		{strs("europe-west1", "europe-west1"), false},
	} {
		if got := evaluate(t, condition, map[string]cty.Value{"regions": tt.regions}); got.True() != tt.want {
			t.Errorf("regions = %#v accepted = %v, want %v", tt.regions.GoString(), got.True(), tt.want)
		}
	}
}

// dynamicContent returns the content block of the dynamic block name in b, and the
// dynamic block itself.
func dynamicContent(t *testing.T, b *hclsyntax.Block, name string) (dyn, content *hclsyntax.Block) {
	t.Helper()
	for _, child := range b.Body.Blocks {
		if child.Type == "dynamic" && child.Labels[0] == name {
			for _, c := range child.Body.Blocks {
				if c.Type == "content" {
					return child, c
				}
			}
		}
	}
	t.Fatalf("%s has no dynamic %s block with content", label(b), name)
	return nil, nil
}

// dynamicWith returns the dynamic block name in b whose for_each refers to ref,
// and its content.
func dynamicWith(t *testing.T, b *hclsyntax.Block, name, ref string) (dyn, content *hclsyntax.Block) {
	t.Helper()
	for _, d := range b.Body.Blocks {
		if d.Type != "dynamic" || d.Labels[0] != name || !refersTo(attr(t, d, "for_each"), ref) {
			continue
		}
		for _, c := range d.Body.Blocks {
			if c.Type == "content" {
				return d, c
			}
		}
	}
	t.Fatalf("%s has no dynamic %s block over %s", label(b), name, ref)
	return nil, nil
}

func TestSafeMethodsAreRetriedAtTheLoadBalancerAndOthersAreNot(t *testing.T) {
	c := load(t)
	urlMap := c.resource(t, "google_compute_url_map.https")

	// Every host goes to the one path matcher, whose default (every method the
	// route rule does not match) is the backend service with no retry policy.
	host := child(t, urlMap, "host_rule")
	if got := stringList(t, attr(t, host, "hosts")); !slices.Equal(got, []string{"*"}) {
		t.Errorf("host_rule hosts = %v, want [*]", got)
	}
	matcher := child(t, urlMap, "path_matcher")
	if got, want := literal(t, attr(t, matcher, "name")).AsString(), literal(t, attr(t, host, "path_matcher")).AsString(); got != want {
		t.Errorf("path_matcher name = %q, host_rule points at %q", got, want)
	}
	if resourceRef(t, attr(t, matcher, "default_service")) != "google_compute_backend_service.hello" {
		t.Errorf("the path matcher's default_service is not the backend service")
	}
	for _, b := range matcher.Body.Blocks {
		if b.Type == "default_route_action" {
			t.Errorf("the path matcher has a default_route_action at %s: its retry policy would also retry POST, PUT, PATCH and DELETE", b.Range())
		}
	}

	dyn, rule := dynamicWith(t, matcher, "route_rules", "var.lb_retries")
	for retries, want := range map[int64]int{0: 0, 1: 1, 3: 1} {
		if got := evaluate(t, attr(t, dyn, "for_each"), map[string]cty.Value{"lb_retries": cty.NumberIntVal(retries)}).LengthInt(); got != want {
			t.Errorf("lb_retries = %d gives %d retry route rules, want %d", retries, got, want)
		}
	}

	// Match rules are ORed, and an inverted header match matches every other
	// method: either would retry POST. So there is one match rule with one
	// header match, not inverted, and no other rule in the path matcher but
	// the canary routes (TestTheCanaryRoutesReachOneRegionsCanaryRevision).
	canary, _ := dynamicWith(t, matcher, "route_rules", "local.canary_neg")
	for _, b := range matcher.Body.Blocks {
		if b.Type == "route_rules" || b.Type == "path_rule" || (b.Type == "dynamic" && b != dyn && b != canary) {
			t.Errorf("the path matcher has a %s block at %s besides the retry rule and the canary routes", b.Type, b.Range())
		}
	}
	var matchRules, headerMatches int
	for _, b := range rule.Body.Blocks {
		if b.Type != "match_rules" {
			continue
		}
		matchRules++
		for _, h := range b.Body.Blocks {
			if h.Type != "header_matches" {
				continue
			}
			headerMatches++
			if inv, ok := h.Body.Attributes["invert_match"]; ok && literal(t, inv.Expr).True() {
				t.Errorf("the retry rule's header match is inverted at %s: it would match every method but the safe ones", inv.Range())
			}
		}
	}
	if matchRules != 1 || headerMatches != 1 {
		t.Errorf("the retry rule has %d match_rules and %d header_matches, want 1 and 1", matchRules, headerMatches)
	}

	// The rule matches every path, and of the methods only the safe ones.
	if got := literal(t, attr(t, rule, "match_rules", "prefix_match")).AsString(); got != "/" {
		t.Errorf("the retry rule's prefix_match = %q, want /", got)
	}
	if got := literal(t, attr(t, rule, "match_rules", "header_matches", "header_name")).AsString(); got != ":method" {
		t.Fatalf("the retry rule matches the header %q, want :method", got)
	}
	// Google's load balancer uses RE2, as Go's regexp does. The expression is
	// anchored so that it means the same whether the match is full or partial.
	re, err := regexp.Compile(literal(t, attr(t, rule, "match_rules", "header_matches", "regex_match")).AsString())
	if err != nil {
		t.Fatalf("the retry rule's regex_match does not compile: %v", err)
	}
	for method, want := range map[string]bool{
		"GET": true, "HEAD": true, "OPTIONS": true,
		"POST": false, "PUT": false, "PATCH": false, "DELETE": false, "XGET": false, "GETX": false,
	} {
		if got := re.MatchString(method); got != want {
			t.Errorf("the retry rule matches %s = %v, want %v", method, got, want)
		}
	}

	if resourceRef(t, attr(t, rule, "route_action", "weighted_backend_services", "backend_service")) != "google_compute_backend_service.hello" {
		t.Errorf("the retry rule does not send to the backend service")
	}
	if w := literal(t, attr(t, rule, "route_action", "weighted_backend_services", "weight")); w.AsBigFloat().Cmp(cty.NumberIntVal(100).AsBigFloat()) != 0 {
		t.Errorf("the retry rule's weight = %s, want 100", w.AsBigFloat())
	}

	policy := child(t, child(t, rule, "route_action"), "retry_policy")
	if rs := refs(attr(t, policy, "num_retries")); !slices.Equal(rs, []string{"var.lb_retries"}) {
		t.Errorf("num_retries = %v, want var.lb_retries", rs)
	}
	// Unset, the per-try timeout is the backend service's, 60 minutes for
	// serverless NEGs: a hung region would hold every request that long.
	if rs := refs(attr(t, policy, "per_try_timeout", "seconds")); !slices.Equal(rs, []string{"var.lb_per_try_timeout_seconds"}) {
		t.Errorf("per_try_timeout.seconds = %v, want var.lb_per_try_timeout_seconds", rs)
	}
	// Only failures that say nothing of the request's result: no 5xx (the
	// service's own 500) and no retriable-4xx.
	conditions := stringList(t, attr(t, policy, "retry_conditions"))
	for _, cond := range conditions {
		if !slices.Contains([]string{"connect-failure", "refused-stream", "gateway-error"}, cond) {
			t.Errorf("retry condition %q retries answers the service gave itself", cond)
		}
	}
	for _, need := range []string{"connect-failure", "gateway-error"} {
		if !slices.Contains(conditions, need) {
			t.Errorf("retry conditions %v lack %s", conditions, need)
		}
	}

	if d := literal(t, attr(t, c.variables["lb_retries"], "default")); d.AsBigFloat().Sign() <= 0 {
		t.Errorf("lb_retries defaults to 0: no request is retried")
	}
	valid := attr(t, c.variables["lb_retries"], "validation", "condition")
	for n, want := range map[float64]bool{0: true, 1: true, 3: true, -1: false, 1.5: false} {
		if got := evaluate(t, valid, map[string]cty.Value{"lb_retries": cty.NumberFloatVal(n)}); got.True() != want {
			t.Errorf("lb_retries = %v accepted = %v, want %v", n, got.True(), want)
		}
	}
	valid = attr(t, c.variables["lb_per_try_timeout_seconds"], "validation", "condition")
	for n, want := range map[float64]bool{1: true, 5: true, 60: true, 0: false, -5: false, 0.5: false} {
		if got := evaluate(t, valid, map[string]cty.Value{"lb_per_try_timeout_seconds": cty.NumberFloatVal(n)}); got.True() != want {
			t.Errorf("lb_per_try_timeout_seconds = %v accepted = %v, want %v", n, got.True(), want)
		}
	}
}

func TestOutlierDetectionUsesOnlyWhatServerlessNEGsSupport(t *testing.T) {
	c := load(t)
	od := child(t, c.resource(t, "google_compute_backend_service.hello"), "outlier_detection")
	// Google's serverless NEG overview: these fields are not supported when the
	// backend service has a serverless NEG attached.
	for _, name := range []string{"enforcing_success_rate", "success_rate_minimum_hosts", "success_rate_request_volume", "success_rate_stdev_factor"} {
		if _, ok := od.Body.Attributes[name]; ok {
			t.Errorf("outlier_detection sets %s, which serverless NEGs do not support", name)
		}
	}
	for _, name := range []string{"consecutive_errors", "consecutive_gateway_failure"} {
		if v := literal(t, attr(t, od, name)); v.AsBigFloat().Sign() <= 0 {
			t.Errorf("outlier_detection %s = %s, want a positive count", name, v.AsBigFloat())
		}
	}
}

// strs and nums are HCL lists of strings and of numbers, as a variable is given.
func strs(ss ...string) cty.Value { return ctyList(cty.String, cty.StringVal, ss) }

func nums(ns ...float64) cty.Value { return ctyList(cty.Number, cty.NumberFloatVal, ns) }

// ctyList is the list of xs, each made a value by val; empty, a list of typ.
func ctyList[T any](typ cty.Type, val func(T) cty.Value, xs []T) cty.Value {
	if len(xs) == 0 {
		return cty.ListValEmpty(typ)
	}
	vs := make([]cty.Value, len(xs))
	for i, x := range xs {
		vs[i] = val(x)
	}
	return cty.ListVal(vs)
}

// defaultNumber is the default of the variable name, a number.
func (c config) defaultNumber(t *testing.T, name string) float64 {
	t.Helper()
	f, _ := literal(t, attr(t, c.variables[name], "default")).AsBigFloat().Float64()
	return f
}

// terraformFunctions are the functions of Terraform this configuration calls: HCL's
// own library, and Terraform's where HCL's lacks them or differs.
var terraformFunctions = map[string]function.Function{
	"alltrue": allTrueFunc, "can": tryfunc.CanFunc, "ceil": stdlib.CeilFunc, "compact": stdlib.CompactFunc, "concat": stdlib.ConcatFunc,
	"contains": stdlib.ContainsFunc, "distinct": stdlib.DistinctFunc, "flatten": stdlib.FlattenFunc,
	"floor": stdlib.FloorFunc, "format": stdlib.FormatFunc, "join": stdlib.JoinFunc, "jsonencode": stdlib.JSONEncodeFunc,
	"keys": stdlib.KeysFunc, "length": lengthFunc, "max": stdlib.MaxFunc, "merge": stdlib.MergeFunc, "min": stdlib.MinFunc,
	"one": oneFunc, "regex": stdlib.RegexFunc, "tolist": toListFunc, "toset": toSetFunc, "tostring": toStringFunc, "try": tryfunc.TryFunc,
}

// lengthFunc is Terraform's length, which counts a string's characters too.
var lengthFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].Type() == cty.String {
			return stdlib.Strlen(args[0])
		}
		return stdlib.Length(args[0])
	},
})

// toListFunc and toSetFunc are Terraform's tolist and toset.
var (
	toListFunc = convertFunc(cty.List(cty.DynamicPseudoType))
	toSetFunc  = convertFunc(cty.Set(cty.DynamicPseudoType))
)

// convertFunc is a Terraform conversion function: its argument converted to want.
func convertFunc(want cty.Type) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
		Type: func(args []cty.Value) (cty.Type, error) {
			v, err := convert.Convert(args[0], want)
			return v.Type(), err
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return convert.Convert(args[0], want)
		},
	})
}

// oneFunc is Terraform's one: the only element of a collection, or null.
var oneFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
	Type:   function.StaticReturnType(cty.DynamicPseudoType),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		switch n := args[0].LengthInt(); n {
		case 0:
			return cty.NullVal(cty.DynamicPseudoType), nil
		case 1:
			it := args[0].ElementIterator()
			it.Next()
			_, v := it.Element()
			return v, nil
		default:
			return cty.NilVal, fmt.Errorf("one: %d elements", n)
		}
	},
})

// allTrueFunc is Terraform's alltrue, which HCL's own library lacks.
var allTrueFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		for it := args[0].ElementIterator(); it.Next(); {
			if _, v := it.Element(); !v.True() {
				return cty.False, nil
			}
		}
		return cty.True, nil
	},
})

// toStringFunc is Terraform's tostring for the numbers and strings it is given here.
var toStringFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].Type() == cty.Number {
			return cty.StringVal(args[0].AsBigFloat().Text('f', -1)), nil
		}
		return args[0], nil
	},
})
