package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/hello/internal/faults"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// These tests check the release pipeline's synthetic traffic (RELEASES.md, "Quiet
// services"): the load balancer's canary routes, the analysis's custom check that
// sends requests through them, and what keeps it honest.

func TestTheCanaryRoutesReachOneRegionsCanaryRevision(t *testing.T) {
	c := load(t)
	neg := c.resource(t, "google_compute_region_network_endpoint_group.canary")
	if !refersTo(attr(t, neg, "for_each"), "local.canary_neg") {
		t.Errorf("the canary NEGs are not one per region of local.canary_neg")
	}
	if rs := refs(attr(t, neg, "cloud_run", "tag")); !slices.Equal(rs, []string{"local.canary_tag"}) {
		t.Errorf("the canary NEG's tag = %v, want local.canary_tag (the tag Cloud Deploy puts on the canary revision)", rs)
	}
	if rs := refs(attr(t, neg, "cloud_run", "service")); !slices.Equal(rs, []string{"local.service"}) {
		t.Errorf("the canary NEG's service = %v, want local.service", rs)
	}
	if got := string(mustSource(t, c.locals["canary_neg"])); !strings.Contains(got, "local.synthetic") {
		t.Errorf("local.canary_neg = %s: the canary routes should exist exactly when the synthetic traffic does", got)
	}

	backend := c.resource(t, "google_compute_backend_service.canary")
	if got := string(mustSource(t, attr(t, backend, "backend", "group"))); got != "google_compute_region_network_endpoint_group.canary[each.key].id" {
		t.Errorf("the canary backend service's backend = %s, want its own region's canary NEG alone", got)
	}
	if got, want := string(mustSource(t, attr(t, backend, "security_policy"))), string(mustSource(t, attr(t, c.resource(t, "google_compute_backend_service.hello"), "security_policy"))); got != want {
		t.Errorf("the canary backend's security_policy = %s, the service's = %s: the canary route would bypass Cloud Armor", got, want)
	}

	matcher := child(t, c.resource(t, "google_compute_url_map.https"), "path_matcher")
	_, rule := dynamicWith(t, matcher, "route_rules", "local.canary_neg")
	header := child(t, child(t, rule, "match_rules"), "header_matches")
	if rs := refs(attr(t, header, "header_name")); !slices.Equal(rs, []string{"local.canary_header"}) {
		t.Errorf("the canary route matches the header %v, want local.canary_header", rs)
	}
	if got := string(mustSource(t, attr(t, header, "exact_match"))); got != "route_rules.key" {
		t.Errorf("the canary route matches %s, want the region (route_rules.key)", got)
	}
	if got := string(mustSource(t, attr(t, rule, "service"))); got != "google_compute_backend_service.canary[route_rules.key].id" {
		t.Errorf("the canary route sends to %s, want the region's canary backend service", got)
	}
	if _, ok := rule.Body.Attributes["route_action"]; ok {
		t.Errorf("the canary route has a route_action: a retry elsewhere would answer from another revision")
	}
	// Rules apply in order of priority, lowest first: a canary request is a
	// GET, which the retry rule would take to the main backend first.
	_, retry := dynamicWith(t, matcher, "route_rules", "var.lb_retries")
	retryPriority, _ := literal(t, attr(t, retry, "priority")).AsBigFloat().Int64()
	// Each region's rule, as the dynamic block makes them: a URL map refuses two
	// rules of the same priority.
	dyn, _ := dynamicWith(t, matcher, "route_rules", "local.canary_neg")
	regions := make([]cty.Value, 40)
	for i := range regions {
		regions[i] = cty.StringVal(fmt.Sprintf("region-%02d", i))
	}
	each, diags := attr(t, dyn, "for_each").Value(&hcl.EvalContext{
		Variables: map[string]cty.Value{"local": cty.ObjectVal(map[string]cty.Value{"canary_neg": cty.SetVal(regions)})},
		Functions: terraformFunctions,
	})
	if diags.HasErrors() {
		t.Fatalf("evaluating the canary routes' for_each: %v", diags)
	}
	seen := map[int64]string{}
	for it := each.ElementIterator(); it.Next(); {
		k, v := it.Element()
		pv, diags := attr(t, rule, "priority").Value(&hcl.EvalContext{Variables: map[string]cty.Value{
			"route_rules": cty.ObjectVal(map[string]cty.Value{"key": k, "value": v}),
		}})
		if diags.HasErrors() {
			t.Fatalf("evaluating the canary route's priority: %v", diags)
		}
		p, _ := pv.AsBigFloat().Int64()
		if p >= retryPriority || p < 0 {
			t.Errorf("the canary route of %s has priority %d, the retry rule %d: it must come first", k.AsString(), p, retryPriority)
		}
		if other, ok := seen[p]; ok {
			t.Errorf("the canary routes of %s and %s both have priority %d", other, k.AsString(), p)
		}
		seen[p] = k.AsString()
	}
	if len(seen) != len(regions) {
		t.Errorf("%d canary routes for %d regions", len(seen), len(regions))
	}

	stage := canaryStrategy(t, c)
	if rs := refs(attr(t, stage, "runtime_config", "cloud_run", "canary_revision_tags")); !slices.Contains(rs, "local.canary_tag") {
		t.Errorf("the pipeline's canary_revision_tags = %v, want local.canary_tag: without the tag the canary routes lead nowhere", rs)
	}
}

// canaryStrategy returns the pipeline's stages' canary block.
func canaryStrategy(t *testing.T, c config) *hclsyntax.Block {
	t.Helper()
	_, content := dynamicContent(t, child(t, c.resource(t, "google_clouddeploy_delivery_pipeline.hello"), "serial_pipeline"), "stages")
	return child(t, child(t, content, "strategy"), "canary")
}

// syntheticCheck returns the analysis's custom check's dynamic block and content.
func syntheticCheck(t *testing.T, c config) (dyn, content *hclsyntax.Block) {
	t.Helper()
	analysis := child(t, child(t, canaryStrategy(t, c), "canary_deployment"), "analysis")
	return dynamicWith(t, analysis, "custom_checks", "local.synthetic")
}

// probeArgs evaluates the custom check's container arguments as Terraform would,
// for a stage whose new revisions are in regions, with vars over the variables'
// defaults and the locals in locals.
func probeArgs(t *testing.T, c config, regions []string, vars map[string]cty.Value, locals map[string]cty.Value) []string {
	t.Helper()
	_, check := syntheticCheck(t, c)
	all := map[string]cty.Value{}
	for name, v := range c.variables {
		if d, ok := v.Body.Attributes["default"]; ok {
			all[name] = literal(t, d.Expr)
		}
	}
	all["domain"] = cty.StringVal("hello.example.com")
	for k, v := range vars {
		all[k] = v
	}
	vals := make([]cty.Value, len(regions))
	for i, r := range regions {
		vals[i] = cty.StringVal(r)
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":           cty.ObjectVal(all),
			"local":         cty.ObjectVal(locals),
			"custom_checks": cty.ObjectVal(map[string]cty.Value{"value": cty.TupleVal(vals)}),
		},
		Functions: terraformFunctions,
	}
	v, diags := attr(t, check, "task", "container", "args").Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("evaluating the probe's arguments: %v", diags)
	}
	var args []string
	for it := v.ElementIterator(); it.Next(); {
		_, a := it.Element()
		args = append(args, a.AsString())
	}
	return args
}

// TestTheSyntheticTrafficRunsTheProbeWithTheReleasePolicysThresholds builds the
// probe and runs it with the arguments the pipeline gives its container, against
// a stand-in for the load balancer's canary routes: it must pass a good canary and
// fail one that answers 500, one that is slow, and one whose route leads nowhere.
func TestTheSyntheticTrafficRunsTheProbeWithTheReleasePolicysThresholds(t *testing.T) {
	c := load(t)
	dyn, check := syntheticCheck(t, c)
	if got := string(mustSource(t, attr(t, dyn, "for_each"))); got != "local.synthetic ? [stages.value.probed] : []" {
		t.Errorf("the custom check's for_each = %s, want it in every stage when the synthetic traffic is on, over the stage's own regions", got)
	}
	if rs := refs(attr(t, check, "task", "container", "image")); !slices.Equal(rs, []string{"var.probe_image"}) {
		t.Errorf("the custom check's image = %v, want var.probe_image", rs)
	}
	if got := string(mustSource(t, attr(t, check, "frequency"))); got != `"${local.synthetic_every_seconds}s"` {
		t.Errorf("the custom check's frequency = %s, want local.synthetic_every_seconds", got)
	}
	stages := string(mustSource(t, c.locals["stages"]))
	if !strings.Contains(stages, "probed = [var.canary_region]") || !strings.Contains(stages, "probed = local.others") {
		t.Errorf("local.stages = %s: the first stage must probe the canary region, the second every other", stages)
	}

	// The probe, as ko builds it.
	probe := filepath.Join(t.TempDir(), "probe")
	if out, err := exec.Command("go", "build", "-o", probe, "../cmd/probe").CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}
	regions := []string{"us-east1", "asia-northeast1"}
	header := literal(t, c.local(t, "canary_header")).AsString()
	// Many requests a second for one second, rather than one a second for four
	// minutes: the same arguments otherwise.
	args := probeArgs(t, c, regions,
		map[string]cty.Value{"synthetic_requests_per_second": cty.NumberIntVal(50)},
		map[string]cty.Value{"canary_header": cty.StringVal(header), "synthetic_run_seconds": cty.NumberIntVal(1)})
	for i, a := range args {
		if a == "-url" && i+1 < len(args) && args[i+1] != "https://hello.example.com/" {
			t.Errorf("-url %s, want the domain's https URL", args[i+1])
		}
	}
	for _, tt := range []struct {
		name    string
		answer  func(region string) (int, time.Duration, string) // status, delay, region named
		wantMsg string                                           // empty: the probe passes
	}{
		{"a good canary", func(r string) (int, time.Duration, string) { return 200, 0, r }, ""},
		{"a canary answering 500", func(r string) (int, time.Duration, string) { return 500, 0, r }, "more than -max-error-ratio=0.05"},
		{"a slow canary in one region", func(r string) (int, time.Duration, string) {
			if r == "asia-northeast1" {
				return 200, 600 * time.Millisecond, r
			}
			return 200, 0, r
		}, "asia-northeast1 answered with a p99 latency"},
		{"no canary: the route answers 404", func(r string) (int, time.Duration, string) { return 404, 0, "" }, "failed"},
		{"a route that leads to another region", func(r string) (int, time.Duration, string) { return 200, 0, "us-east1" }, "no answer from asia-northeast1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				status, delay, region := tt.answer(r.Header.Get(header))
				time.Sleep(delay)
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"message":"Hello world!","region":%q}`+"\n", region)
			}))
			defer lb.Close()
			run := slices.Clone(args)
			for i := range run {
				if run[i] == "-url" {
					run[i+1] = lb.URL + "/"
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, probe, run...).CombinedOutput()
			var exit *exec.ExitError
			switch {
			case tt.wantMsg == "" && err != nil:
				t.Errorf("probe %s: %v, want success:\n%s", strings.Join(run, " "), err, out)
			case tt.wantMsg != "" && (!errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), tt.wantMsg)):
				t.Errorf("probe %s: %v, want exit 1 saying %q:\n%s", strings.Join(run, " "), err, tt.wantMsg, out)
			}
		})
	}
}

// TestTheSyntheticTrafficIsSizedFromTheAlertPolicies: each region's new revision
// gets synthetic_requests_per_second, every run lasts its share of the check's
// period, and the preconditions refuse what would let an analysis look at
// nothing.
func TestTheSyntheticTrafficIsSizedFromTheAlertPolicies(t *testing.T) {
	c := load(t)
	every, _ := literal(t, c.local(t, "synthetic_every_seconds")).AsBigFloat().Int64()
	run, _ := literal(t, c.local(t, "synthetic_run_seconds")).AsBigFloat().Int64()
	if every != 300 {
		t.Errorf("local.synthetic_every_seconds = %d, want 300: Cloud Deploy's minimum and default", every)
	}
	if run <= 0 || run >= every {
		t.Errorf("local.synthetic_run_seconds = %d: each run must end before the next (every %d s)", run, every)
	}
	args := strings.Join(probeArgs(t, c, []string{"us-east1", "us-west1", "asia-northeast1"}, nil,
		map[string]cty.Value{"canary_header": literal(t, c.local(t, "canary_header")), "synthetic_run_seconds": cty.NumberIntVal(run)}), " ")
	for _, want := range []string{
		"-route-header X-Hello-Canary", "-expect-region us-east1,us-west1,asia-northeast1",
		"-rate 3 ", fmt.Sprintf("-n %d ", 3*run), "-max-error-ratio 0.05", "-max-p99 500ms",
	} {
		if !strings.Contains(args+" ", want) {
			t.Errorf("the probe's arguments %q lack %q", args, want)
		}
	}

	others := c.resource(t, "google_clouddeploy_target.others")
	condition := func(about string) hclsyntax.Expression {
		for _, b := range child(t, others, "lifecycle").Body.Blocks {
			if b.Type == "precondition" && refersTo(attr(t, b, "condition"), about) {
				return attr(t, b, "condition")
			}
		}
		t.Fatalf("no precondition on %s", about)
		return nil
	}
	eval := func(e hclsyntax.Expression, synthetic bool, vars map[string]cty.Value) bool {
		t.Helper()
		v, diags := e.Value(&hcl.EvalContext{
			Variables: map[string]cty.Value{"var": cty.ObjectVal(vars), "local": cty.ObjectVal(map[string]cty.Value{
				"synthetic": cty.BoolVal(synthetic), "synthetic_every_seconds": cty.NumberIntVal(every),
				"registry_url": cty.StringVal("europe-west1-docker.pkg.dev/p/containers"),
			})},
			Functions: terraformFunctions,
		})
		if diags.HasErrors() {
			t.Fatalf("evaluating %s: %v", e.Range(), diags)
		}
		return v.True()
	}
	digest := strings.Repeat("a", 64)
	for image, want := range map[string]bool{
		"europe-west1-docker.pkg.dev/p/containers/probe@sha256:" + digest:        true,
		"europe-west1-docker.pkg.dev/p/containers/probe:v1.2.3@sha256:" + digest: true,
		"europe-west1-docker.pkg.dev/p/containers/probe:latest":                  false,
		// Registries the analysis account cannot pull from.
		"localhost:5000/probe@sha256:" + digest:                             false,
		"europe-west1-docker.pkg.dev/p/other/probe@sha256:" + digest:        false,
		"us-docker.pkg.dev/p/containers/probe@sha256:" + digest:             false,
		"europe-west1-docker.pkg.dev/p/containers/x/probe@sha256:" + digest: false,
		"": false,
	} {
		if got := eval(condition("var.probe_image"), true, map[string]cty.Value{"probe_image": cty.StringVal(image)}); got != want {
			t.Errorf("probe_image = %q accepted = %v, want %v", image, got, want)
		}
		if !eval(condition("var.probe_image"), false, map[string]cty.Value{"probe_image": cty.StringVal(image)}) {
			t.Errorf("probe_image = %q refused with the synthetic traffic off", image)
		}
	}
	for _, tt := range []struct {
		rps, window float64
		want        bool
	}{{1, 60, true}, {0.5, 60, true}, {0.25, 60, false}, {1, 10, false}} {
		vars := map[string]cty.Value{"synthetic_requests_per_second": cty.NumberFloatVal(tt.rps), "alert_window_seconds": cty.NumberFloatVal(tt.window)}
		if got := eval(condition("var.synthetic_requests_per_second"), true, vars); got != tt.want {
			t.Errorf("synthetic_requests_per_second %v, alert_window_seconds %v: accepted = %v, want %v", tt.rps, tt.window, got, tt.want)
		}
	}
	// Cloud Armor's limit per client address, which the probe's one address meets.
	armor := condition("var.rate_limit_requests")
	for _, tt := range []struct {
		rps, limit float64
		armor      bool
		want       bool
	}{{1, 600, true, true}, {3, 600, true, true}, {4, 600, true, false}, {4, 600, false, true}} {
		v, diags := armor.Value(&hcl.EvalContext{
			Variables: map[string]cty.Value{
				"var": cty.ObjectVal(map[string]cty.Value{
					"synthetic_requests_per_second": cty.NumberFloatVal(tt.rps), "rate_limit_requests": cty.NumberFloatVal(tt.limit),
					"rate_limit_interval_seconds": cty.NumberIntVal(60), "cloud_armor": cty.BoolVal(tt.armor),
				}),
				"local": cty.ObjectVal(map[string]cty.Value{"synthetic": cty.True, "others": cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b"), cty.StringVal("c")})}),
			},
			Functions: terraformFunctions,
		})
		if diags.HasErrors() {
			t.Fatalf("evaluating %s: %v", armor.Range(), diags)
		}
		if v.True() != tt.want {
			t.Errorf("%v a second to 3 regions, Cloud Armor %v at %v a minute: accepted = %v, want %v", tt.rps, tt.armor, tt.limit, v.True(), tt.want)
		}
	}
	for minutes, want := range map[int64]bool{10: true, 30: true, 9: false, 5: false} {
		if got := eval(condition("var.analysis_minutes"), true, map[string]cty.Value{"analysis_minutes": cty.NumberIntVal(minutes)}); got != want {
			t.Errorf("analysis_minutes %d with the synthetic traffic: accepted = %v, want %v", minutes, got, want)
		}
	}
	if d, _ := literal(t, attr(t, c.variables["synthetic_requests_per_second"], "default")).AsBigFloat().Float64(); d <= 0 {
		t.Errorf("synthetic_requests_per_second defaults to %v: a quiet service's analyses would look at nothing", d)
	}
	if got := string(mustSource(t, c.locals["synthetic"])); got != "var.load_balancer && var.synthetic_requests_per_second > 0" {
		t.Errorf("local.synthetic = %s", got)
	}
}

// TestTheFaultHarnessSendsWhatThePipelineSends: the release rows' synthetic
// traffic has the pipeline's rate, period, run and header.
func TestTheFaultHarnessSendsWhatThePipelineSends(t *testing.T) {
	c := load(t)
	p := faults.ReleasePolicy()
	rps, _ := literal(t, attr(t, c.variables["synthetic_requests_per_second"], "default")).AsBigFloat().Float64()
	every, _ := literal(t, c.local(t, "synthetic_every_seconds")).AsBigFloat().Int64()
	run, _ := literal(t, c.local(t, "synthetic_run_seconds")).AsBigFloat().Int64()
	if rps != p.SyntheticRate || time.Duration(every)*time.Second != p.SyntheticEvery || time.Duration(run)*time.Second != p.SyntheticRun {
		t.Errorf("the pipeline sends %v/s for %d s every %d s; the harness %v/s for %s every %s", rps, run, every, p.SyntheticRate, p.SyntheticRun, p.SyntheticEvery)
	}
	if got := literal(t, c.local(t, "canary_header")).AsString(); got != faults.CanaryHeader {
		t.Errorf("local.canary_header = %q, the harness's = %q", got, faults.CanaryHeader)
	}
	// The probe's own verdict and how much it holds in flight: the container's
	// arguments, which the harness passes to the same code.
	args := strings.Join(probeArgs(t, c, []string{"us-east1"}, nil,
		map[string]cty.Value{"canary_header": cty.StringVal(faults.CanaryHeader), "synthetic_run_seconds": cty.NumberIntVal(run)}), " ") + " "
	for _, want := range []string{
		fmt.Sprintf("-c %d ", p.SyntheticInFlight),
		fmt.Sprintf("-max-error-ratio %g ", p.ErrorRatio),
		fmt.Sprintf("-max-p99 %dms ", p.Latency.Milliseconds()),
	} {
		if !strings.Contains(args, want) {
			t.Errorf("the container's arguments %q lack %q, which the harness uses", args, want)
		}
	}
	if strings.Contains(args, "-timeout") {
		t.Errorf("the container's arguments %q set -timeout; the harness uses the probe's default", args)
	}
}

// TestTheAnalysisRunsAsAnAccountThatCanDeployNothing: the custom check's container
// runs with the analysis jobs' identity, which reads alerts and may not touch
// Cloud Run, so a bad probe image cannot deploy anything.
func TestTheAnalysisRunsAsAnAccountThatCanDeployNothing(t *testing.T) {
	c := load(t)
	for _, addr := range []string{"google_clouddeploy_target.region", "google_clouddeploy_target.others"} {
		usedBy := map[string]string{}
		for _, b := range c.resource(t, addr).Body.Blocks {
			if b.Type != "execution_configs" {
				continue
			}
			for _, u := range stringList(t, attr(t, b, "usages")) {
				usedBy[u] = resourceRef(t, attr(t, b, "service_account"))
			}
		}
		want := map[string]string{"RENDER": "google_service_account.deployer", "DEPLOY": "google_service_account.deployer", "ANALYSIS": "google_service_account.analysis"}
		for usage, sa := range want {
			if usedBy[usage] != sa {
				t.Errorf("%s runs %s as %q, want %s", addr, usage, usedBy[usage], sa)
			}
		}
	}
	// Exactly these: running the job, reading alerts, calling the Monitoring API.
	roles := stringList(t, c.resource(t, "google_project_iam_member.analysis").Body.Attributes["for_each"].Expr.(*hclsyntax.FunctionCallExpr).Args[0])
	slices.Sort(roles)
	if want := []string{"roles/clouddeploy.jobRunner", "roles/monitoring.alertPolicyViewer", "roles/monitoring.alertViewer", "roles/serviceusage.serviceUsageConsumer"}; !slices.Equal(roles, want) {
		t.Errorf("the analysis account's project roles = %v, want %v", roles, want)
	}
	// Whoever creates rollouts (CI, the automation) acts as both accounts.
	for _, addr := range []string{"google_service_account_iam_member.automation_acts_as_executor", "google_service_account_iam_member.ci_acts_as_executor"} {
		src := string(mustSource(t, attr(t, c.resource(t, addr), "for_each")))
		for _, sa := range []string{"google_service_account.deployer.name", "google_service_account.analysis.name"} {
			if !strings.Contains(src, sa) {
				t.Errorf("%s does not act as %s", addr, sa)
			}
		}
	}
}
