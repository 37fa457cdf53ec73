package deploy

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/hello/internal/faults"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"
)

// manifestPath is the service's spec, which Cloud Deploy deploys.
const manifestPath = "service.yaml"

// manifest is deploy/service.yaml, decoded, and as a YAML node tree for its
// comments.
type manifest struct {
	text string
	doc  map[string]any
	root *yaml.Node
}

func loadManifest(t *testing.T) manifest {
	t.Helper()
	b, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	m := manifest{text: string(b)}
	if err := yaml.Unmarshal(b, &m.doc); err != nil {
		t.Fatalf("%s: %v", manifestPath, err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	m.root = n.Content[0]
	return m
}

// at returns the value at path (map keys, or list indexes as "0") in the manifest.
func (m manifest) at(t *testing.T, path ...string) any {
	t.Helper()
	var v any = m.doc
	for i, p := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				t.Fatalf("%s has no %s", manifestPath, strings.Join(path[:i+1], "."))
			}
		case []any:
			if p != "0" || len(x) == 0 {
				t.Fatalf("%s: %s is a list; only its first item is looked at", manifestPath, strings.Join(path[:i], "."))
			}
			v = x[0]
		default:
			t.Fatalf("%s: %s is not a map", manifestPath, strings.Join(path[:i], "."))
		}
	}
	return v
}

// comment returns the line comment of the value at path.
func (m manifest) comment(t *testing.T, path ...string) string {
	t.Helper()
	n := m.root
	for _, p := range path {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
				}
			}
			if next == nil {
				t.Fatalf("%s has no %s", manifestPath, strings.Join(path, "."))
			}
			n = next
		case yaml.SequenceNode:
			n = n.Content[0]
		}
	}
	return n.LineComment
}

// parameters returns the deploy parameters the manifest takes ("# from-param: ${NAME}").
func (m manifest) parameters() []string {
	var names []string
	for _, match := range regexp.MustCompile(`# from-param: \$\{([A-Za-z0-9_]+)\}`).FindAllStringSubmatch(m.text, -1) {
		names = append(names, match[1])
	}
	slices.Sort(names)
	return slices.Compact(names)
}

var (
	templateAnnotations = []string{"spec", "template", "metadata", "annotations"}
	container           = []string{"spec", "template", "spec", "containers", "0"}
)

func TestTerraformDeclaresNoCloudRunServiceAndTakesTheNameFromTheManifest(t *testing.T) {
	c := load(t)
	// Cloud Deploy replaces the service from the manifest on every release: a
	// Cloud Run service in Terraform too would be undone by every release, and
	// would undo it at the next apply.
	for _, typ := range []string{"google_cloud_run_v2_service", "google_cloud_run_service", "google_cloud_run_v2_service_iam_member", "google_cloud_run_v2_service_iam_binding"} {
		if got := c.ofType(typ); len(got) > 0 {
			t.Errorf("Terraform declares %v: Cloud Deploy owns the Cloud Run services (deploy/service.yaml)", got)
		}
	}
	spec := c.local(t, "spec")
	if !strings.Contains(string(mustSource(t, spec)), `file("${path.module}/../service.yaml")`) {
		t.Errorf("local.spec is %s, want yamldecode(file(\"${path.module}/../service.yaml\"))", mustSource(t, spec))
	}
	if rs := refs(c.local(t, "service")); !slices.Equal(rs, []string{"local.spec.metadata.name"}) {
		t.Errorf("local.service = %v, want local.spec.metadata.name", rs)
	}
	m := loadManifest(t)
	if m.at(t, "apiVersion") != "serving.knative.dev/v1" || m.at(t, "kind") != "Service" {
		t.Errorf("%s is %v %v, want a serving.knative.dev/v1 Service", manifestPath, m.at(t, "apiVersion"), m.at(t, "kind"))
	}
	if name, _ := m.at(t, "metadata", "name").(string); !regexp.MustCompile(`^[a-z]([a-z0-9-]{0,40}[a-z0-9])?$`).MatchString(name) {
		t.Errorf("the service's name %q is not a short lower-case name (it prefixes account ids of at most 30 characters)", name)
	}
}

// mustSource returns the source text of e.
func mustSource(t *testing.T, e hclsyntax.Expression) []byte {
	t.Helper()
	r := e.Range()
	b, err := os.ReadFile(r.Filename)
	if err != nil {
		t.Fatal(err)
	}
	return b[r.Start.Byte:r.End.Byte]
}

func TestTheManifestCarriesWhatServiceHealthAndFailoverRelyOn(t *testing.T) {
	m := loadManifest(t)
	annotations, _ := m.at(t, "metadata", "annotations").(map[string]any)
	// Only load balancers reach the service, and no invoker IAM binding is needed.
	for key, want := range map[string]string{
		"run.googleapis.com/ingress":              "internal-and-cloud-load-balancing",
		"run.googleapis.com/invoker-iam-disabled": "true",
	} {
		if got, _ := annotations[key].(string); got != want {
			t.Errorf("metadata.annotations[%s] = %q, want %q", key, got, want)
		}
	}
	// Service health needs a minimum instance per region, from var.min_instances.
	if got := m.comment(t, append(templateAnnotations, "autoscaling.knative.dev/minScale")...); got != "# from-param: ${min_instances}" {
		t.Errorf("minScale's comment = %q, want it to take the deploy parameter min_instances", got)
	}
	if got := m.comment(t, append(templateAnnotations, "autoscaling.knative.dev/maxScale")...); got != "# from-param: ${max_instances}" {
		t.Errorf("maxScale's comment = %q, want it to take the deploy parameter max_instances", got)
	}
	if got := m.comment(t, "spec", "template", "spec", "serviceAccountName"); got != "# from-param: ${runtime_service_account}" {
		t.Errorf("serviceAccountName's comment = %q, want it to take the deploy parameter runtime_service_account", got)
	}
	for _, probe := range []string{"readinessProbe", "startupProbe"} {
		if got := m.at(t, append(container, probe, "httpGet", "path")...); got != "/health/" {
			t.Errorf("%s path = %v, want /health/", probe, got)
		}
	}
	// Cloud Run service health: unready after 3 failures 5 s apart, ready after 2.
	for field, want := range map[string]int{"periodSeconds": 5, "timeoutSeconds": 1, "failureThreshold": 3, "successThreshold": 2} {
		if got := m.at(t, append(container, "readinessProbe", field)...); got != want {
			t.Errorf("readinessProbe.%s = %v, want %d", field, got, want)
		}
	}
	// The service starts in milliseconds: the startup probe must not wait out
	// the default 10 s period.
	// period: Cloud Run's shortest (1 s); no initial delay; a timeout no longer
	// than the period (Cloud Run refuses one); and 10 s in all before Cloud Run
	// gives up on the instance.
	for field, want := range map[string]int{"initialDelaySeconds": 0, "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 10} {
		if got := m.at(t, append(container, "startupProbe", field)...); got != want {
			t.Errorf("startupProbe.%s = %v, want %d", field, got, want)
		}
	}
	if got := m.at(t, append(container, "ports", "0", "containerPort")...); got != 8080 {
		t.Errorf("containerPort = %v, want 8080", got)
	}
	// make release replaces this reference, and only this one, with the
	// verified digest.
	if got := m.at(t, append(container, "image")...); got != "ko://github.com/example/hello" {
		t.Errorf("the image = %v, want ko://github.com/example/hello, which make release replaces", got)
	}
	if n := strings.Count(m.text, "image: ko://"); n != 1 {
		t.Errorf("%s has %d images given as ko:// references, want 1", manifestPath, n)
	}
	if _, ok := m.at(t, "spec").(map[string]any)["traffic"]; ok {
		t.Errorf("%s sets spec.traffic: Cloud Deploy's canary manages the traffic split", manifestPath)
	}
}

func TestEveryParameterTheManifestTakesIsGivenToEveryRegionAndNoOther(t *testing.T) {
	c := load(t)
	m := loadManifest(t)
	want := m.parameters()
	if len(want) == 0 {
		t.Fatalf("%s takes no deploy parameter", manifestPath)
	}
	params, ok := c.local(t, "deploy_parameters").(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("local.deploy_parameters is not an object")
	}
	var got []string
	for _, item := range params.Items {
		got = append(got, literal(t, item.KeyExpr).AsString())
	}
	// Each region's target gives local.deploy_parameters and its own region:
	// merge(local.deploy_parameters, { region = each.key }).
	region := c.resource(t, "google_clouddeploy_target.region")
	call, ok := attr(t, region, "deploy_parameters").(*hclsyntax.FunctionCallExpr)
	if !ok || call.Name != "merge" || len(call.Args) != 2 || !slices.Equal(refs(call.Args[0]), []string{"local.deploy_parameters"}) {
		t.Fatalf("the region targets' deploy_parameters are not merge(local.deploy_parameters, { region = each.key })")
	}
	own, ok := call.Args[1].(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("the region targets' own deploy parameters are not an object")
	}
	for _, item := range own.Items {
		key := literal(t, item.KeyExpr).AsString()
		got = append(got, key)
		if key != "region" || !slices.Equal(refs(item.ValueExpr), []string{"each.key"}) {
			t.Errorf("a region's target gives %s = %s, want only region = each.key", key, refs(item.ValueExpr))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("the region targets give the parameters %v, the manifest takes %v: a missing one makes the release fail, an extra one is a setting that does nothing", got, want)
	}
	// Given once: a parameter given twice with other values fails the release.
	if _, ok := c.resource(t, "google_clouddeploy_target.others").Body.Attributes["deploy_parameters"]; ok {
		t.Errorf("the multi-target sets deploy_parameters too; its children have them")
	}
	for _, item := range params.Items {
		switch key := literal(t, item.KeyExpr).AsString(); key {
		case "min_instances", "max_instances":
			if !refersTo(item.ValueExpr, "var."+key) {
				t.Errorf("deploy parameter %s does not come from var.%s", key, key)
			}
		case "project_id":
			if !slices.Equal(refs(item.ValueExpr), []string{"var.project"}) {
				t.Errorf("deploy parameter project_id does not come from var.project")
			}
		}
	}
}

// regionsAndCanary evaluates local.others for the given variables.
func others(t *testing.T, c config, regions []string, canary string) []string {
	t.Helper()
	vals := make([]cty.Value, len(regions))
	for i, r := range regions {
		vals[i] = cty.StringVal(r)
	}
	v := evaluate(t, c.local(t, "others"), map[string]cty.Value{"regions": cty.ListVal(vals), "canary_region": cty.StringVal(canary)})
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

func TestTheCanaryRegionComesFirstAndEveryRegionIsDeployedExactlyOnce(t *testing.T) {
	c := load(t)
	// One target per region, in the region.
	region := c.resource(t, "google_clouddeploy_target.region")
	if !refersTo(attr(t, region, "for_each"), "local.regions") {
		t.Errorf("the region targets are not for_each over local.regions")
	}
	if got := string(mustSource(t, attr(t, region, "run", "location"))); got != `"projects/${var.project}/locations/${each.key}"` {
		t.Errorf("run.location = %s, want projects/${var.project}/locations/${each.key}", got)
	}

	// The stages, in promotion order: the canary's target, then the multi-target.
	stages, ok := c.local(t, "stages").(*hclsyntax.TupleConsExpr)
	if !ok || len(stages.Exprs) != 2 {
		t.Fatalf("local.stages is not a list of two stages")
	}
	field := func(stage hclsyntax.Expression, name string) hclsyntax.Expression {
		for _, item := range stage.(*hclsyntax.ObjectConsExpr).Items {
			if literal(t, item.KeyExpr).AsString() == name {
				return item.ValueExpr
			}
		}
		t.Fatalf("a stage has no %s", name)
		return nil
	}
	if got := string(mustSource(t, field(stages.Exprs[0], "target"))); got != "google_clouddeploy_target.region[var.canary_region].name" {
		t.Errorf("the first stage's target is %s, want google_clouddeploy_target.region[var.canary_region].name", got)
	}
	if got := string(mustSource(t, field(stages.Exprs[0], "regions"))); got != "[var.canary_region]" {
		t.Errorf("the first stage's analysis reads the alerts of %s, want [var.canary_region]", got)
	}
	if resourceRef(t, field(stages.Exprs[1], "target")) != "google_clouddeploy_target.others" {
		t.Errorf("the second stage's target is not the multi-target")
	}
	// The bake is not analysed, so the second stage watches the canary region too.
	if got := string(mustSource(t, field(stages.Exprs[1], "regions"))); got != "concat(local.others, [var.canary_region])" {
		t.Errorf("the second stage's analysis reads the alerts of %s, want concat(local.others, [var.canary_region])", got)
	}
	pipeline := c.resource(t, "google_clouddeploy_delivery_pipeline.hello")
	dyn, content := dynamicContent(t, child(t, pipeline, "serial_pipeline"), "stages")
	if rs := refs(attr(t, dyn, "for_each")); !slices.Equal(rs, []string{"local.stages"}) {
		t.Errorf("the pipeline's stages are for_each over %v, want local.stages", rs)
	}
	if rs := refs(attr(t, content, "target_id")); !slices.Equal(rs, []string{"stages.value.target"}) {
		t.Errorf("a stage's target_id = %v, want stages.value.target", rs)
	}
	for _, b := range child(t, pipeline, "serial_pipeline").Body.Blocks {
		if b.Type == "stages" {
			t.Errorf("the pipeline has a stage written by hand at %s besides the two", b.Range())
		}
	}

	// The multi-target's children are local.others, which is every region but
	// the canary, each once: so every region is deployed exactly once.
	ids := attr(t, c.resource(t, "google_clouddeploy_target.others"), "multi_target", "target_ids")
	if got := string(mustSource(t, ids)); got != "[for r in local.others : google_clouddeploy_target.region[r].name]" {
		t.Errorf("the multi-target's children are %s, want the region targets of local.others", got)
	}
	for _, tt := range []struct {
		regions []string
		canary  string
	}{
		{c.defaultRegions(t), literal(t, attr(t, c.variables["canary_region"], "default")).AsString()},
		{[]string{"europe-west1", "us-east1"}, "us-east1"},
		{[]string{"a", "b", "c", "d", "e"}, "c"},
	} {
		rest := others(t, c, tt.regions, tt.canary)
		all := append([]string{tt.canary}, rest...)
		slices.Sort(all)
		want := slices.Sorted(slices.Values(tt.regions))
		if !slices.Equal(all, want) || slices.Contains(rest, tt.canary) {
			t.Errorf("regions %v, canary %s: deployed to %s then %v, want each region exactly once", tt.regions, tt.canary, tt.canary, rest)
		}
	}
	if d := literal(t, attr(t, c.variables["canary_region"], "default")).AsString(); !slices.Contains(c.defaultRegions(t), d) {
		t.Errorf("canary_region's default %s is not one of the default regions", d)
	}

	// A canary that is not one of the regions stops the plan.
	var condition hclsyntax.Expression
	for _, b := range child(t, c.resource(t, "google_clouddeploy_target.others"), "lifecycle").Body.Blocks {
		if b.Type == "precondition" && refersTo(attr(t, b, "condition"), "var.canary_region") {
			condition = attr(t, b, "condition")
		}
	}
	if condition == nil {
		t.Fatalf("no precondition checks that canary_region is one of regions")
	}
	for canary, want := range map[string]bool{"europe-west1": true, "us-east1": true, "us-central1": false, "": false} {
		got := evaluate(t, condition, map[string]cty.Value{"canary_region": cty.StringVal(canary), "regions": cty.ListVal([]cty.Value{cty.StringVal("europe-west1"), cty.StringVal("us-east1")})})
		if got.True() != want {
			t.Errorf("canary_region %q with regions [europe-west1 us-east1]: precondition passes = %v, want %v", canary, got.True(), want)
		}
	}
}

func TestEachStageIsACanaryWithAnAnalysisOfItsOwnRegionsThresholdsFromTheVariables(t *testing.T) {
	c := load(t)
	_, content := dynamicContent(t, child(t, c.resource(t, "google_clouddeploy_delivery_pipeline.hello"), "serial_pipeline"), "stages")
	canary := child(t, child(t, content, "strategy"), "canary")
	if !literal(t, attr(t, canary, "runtime_config", "cloud_run", "automatic_traffic_control")).True() {
		t.Errorf("automatic_traffic_control is not true: Cloud Deploy would not split the traffic")
	}
	deployment := child(t, canary, "canary_deployment")
	if rs := refs(attr(t, deployment, "percentages")); !slices.Equal(rs, []string{"var.canary_percentages"}) {
		t.Errorf("percentages = %v, want var.canary_percentages", rs)
	}
	analysis := child(t, deployment, "analysis")
	if rs := refs(attr(t, analysis, "duration")); !slices.Equal(rs, []string{"var.analysis_minutes"}) {
		t.Errorf("the analysis duration = %v, want var.analysis_minutes", rs)
	}
	check := child(t, child(t, analysis, "google_cloud"), "alert_policy_checks")
	policies := attr(t, check, "alert_policies")
	for _, want := range []string{"google_monitoring_alert_policy.errors", "google_monitoring_alert_policy.latency", "stages.value.regions"} {
		if !refersTo(policies, want) {
			t.Errorf("the analysis's alert_policies do not refer to %s", want)
		}
	}
	if _, ok := check.Body.Attributes["labels"]; ok {
		t.Errorf("the analysis filters alerts by labels; it must see every alert of its regions' policies")
	}

	// The alert policies: one of each per region, on that region's service,
	// grouped by revision, thresholds and window from the variables.
	for name, threshold := range map[string]string{"errors": "var.alert_error_ratio", "latency": "var.alert_latency_ms"} {
		p := c.resource(t, "google_monitoring_alert_policy."+name)
		if !refersTo(attr(t, p, "for_each"), "local.regions") {
			t.Errorf("alert policy %s is not for_each over local.regions", name)
		}
		cond := child(t, child(t, p, "conditions"), "condition_threshold")
		if rs := refs(attr(t, cond, "threshold_value")); !slices.Equal(rs, []string{threshold}) {
			t.Errorf("alert policy %s's threshold = %v, want %s", name, rs, threshold)
		}
		if got := literal(t, attr(t, cond, "comparison")).AsString(); got != "COMPARISON_GT" {
			t.Errorf("alert policy %s compares %s, want COMPARISON_GT", name, got)
		}
		if got := literal(t, attr(t, cond, "duration")).AsString(); got != "0s" {
			t.Errorf("alert policy %s waits %s before it opens, want 0s: the analysis's time is the wait", name, got)
		}
		// A rolled-back revision sends no more data; its alert must close rather
		// than fail every release after it until auto_close.
		if got := literal(t, attr(t, cond, "evaluation_missing_data")).AsString(); got != "EVALUATION_MISSING_DATA_INACTIVE" {
			t.Errorf("alert policy %s treats missing data as %s, want EVALUATION_MISSING_DATA_INACTIVE", name, got)
		}
		for _, agg := range []string{"aggregations", "denominator_aggregations"} {
			if agg == "denominator_aggregations" && name == "latency" {
				continue
			}
			a := child(t, cond, agg)
			if rs := refs(attr(t, a, "alignment_period")); !slices.Equal(rs, []string{"var.alert_window_seconds"}) {
				t.Errorf("alert policy %s's %s alignment = %v, want var.alert_window_seconds", name, agg, rs)
			}
			if got := stringList(t, attr(t, a, "group_by_fields")); !slices.Equal(got, []string{"resource.label.revision_name"}) {
				t.Errorf("alert policy %s's %s groups by %v, want the revision", name, agg, got)
			}
		}
		filter := string(mustSource(t, attr(t, cond, "filter")))
		if name == "errors" {
			filter = string(mustSource(t, c.local(t, "request_count"))) + filter
			if !strings.Contains(filter, `metric.label.response_code_class = \"5xx\"`) {
				t.Errorf("the errors policy's filter %s does not count 5xx", filter)
			}
			if got := string(mustSource(t, attr(t, cond, "denominator_filter"))); got != "local.request_count[each.key]" {
				t.Errorf("the errors policy's denominator = %s, want local.request_count[each.key]", got)
			}
		}
		for _, want := range []string{`resource.label.service_name = \"${local.service}\"`, `resource.type = \"cloud_run_revision\"`} {
			if !strings.Contains(filter, want) {
				t.Errorf("alert policy %s's filter %s lacks %s", name, filter, want)
			}
		}
		if !strings.Contains(filter, `resource.label.location = \"${each.key}\"`) && !strings.Contains(filter, `resource.label.location = \"${r}\"`) {
			t.Errorf("alert policy %s's filter %s is not limited to its region", name, filter)
		}
	}
}

func TestFailedRolloutsRollBackAndAHealthyCanaryIsPromotedAfterTheBake(t *testing.T) {
	c := load(t)
	for _, a := range c.ofType("google_clouddeploy_automation") {
		if rs := refs(attr(t, c.resource(t, a), "delivery_pipeline")); !slices.Equal(rs, []string{"google_clouddeploy_delivery_pipeline.hello.name"}) {
			t.Errorf("%s is for %v, want the pipeline", a, rs)
		}
	}
	repair := c.resource(t, "google_clouddeploy_automation.advance_and_repair")
	if got := literal(t, attr(t, repair, "selector", "targets", "id")).AsString(); got != "*" {
		t.Errorf("the repair automation selects %q, want every target (*)", got)
	}
	var rollback, advance bool
	for _, rules := range repair.Body.Blocks {
		if rules.Type != "rules" {
			continue
		}
		for _, rule := range rules.Body.Blocks {
			switch rule.Type {
			case "repair_rollout_rule":
				for _, b := range rule.Body.Blocks {
					if b.Type == "repair_phases" {
						for _, p := range b.Body.Blocks {
							rollback = rollback || p.Type == "rollback"
						}
					}
				}
				for _, limit := range []string{"phases", "jobs"} {
					if _, ok := rule.Body.Attributes[limit]; ok {
						t.Errorf("the repair rule limits its %s: a failed analysis in any step must roll back", limit)
					}
				}
			case "advance_rollout_rule":
				advance = true
			}
		}
	}
	if !rollback {
		t.Errorf("no repair rule rolls back: a failed rollout would wait for a person")
	}
	if !advance {
		t.Errorf("no advance rule: every step would wait for a person")
	}

	promote := c.resource(t, "google_clouddeploy_automation.promote")
	if !strings.Contains(string(mustSource(t, attr(t, promote, "selector", "targets", "id"))), "[var.canary_region]") {
		t.Errorf("the promotion does not start from the canary region's target")
	}
	rule := child(t, child(t, promote, "rules"), "promote_release_rule")
	if got := literal(t, attr(t, rule, "destination_target_id")).AsString(); got != "@next" {
		t.Errorf("the promotion goes to %q, want @next", got)
	}
	if rs := refs(attr(t, rule, "wait")); !slices.Equal(rs, []string{"var.bake_minutes"}) {
		t.Errorf("the promotion waits %v, want var.bake_minutes", rs)
	}
}

func TestReleaseVariablesRefuseValuesOutOfRange(t *testing.T) {
	c := load(t)
	valid := func(name string, v cty.Value) bool {
		return evaluate(t, attr(t, c.variables[name], "validation", "condition"), map[string]cty.Value{name: v}).True()
	}
	for _, tt := range []struct {
		v    cty.Value
		want bool
	}{
		{nums(2, 25), true}, {nums(10), true}, {nums(1, 50, 99), true},
		{nums(), false}, {nums(25, 2), false}, {nums(2, 2), false}, {nums(0, 10), false}, {nums(10, 100), false}, {nums(2.5), false},
	} {
		if got := valid("canary_percentages", tt.v); got != tt.want {
			t.Errorf("canary_percentages = %s accepted = %v, want %v", tt.v.GoString(), got, tt.want)
		}
	}
	for name, cases := range map[string]map[float64]bool{
		"analysis_minutes":     {5: true, 10: true, 2880: true, 4: false, 2881: false, 7.5: false},
		"alert_error_ratio":    {0.05: true, 0.5: true, 0: false, 1: false, -0.1: false},
		"alert_latency_ms":     {1: true, 500: true, 0: false, 0.5: false},
		"alert_window_seconds": {60: true, 300: true, 30: false, 90: false},
		"bake_minutes":         {0: true, 30: true, 20160: true, -1: false, 20161: false, 1.5: false},
		"max_instances":        {1: true, 10: true, 0: false, 2.5: false},
	} {
		for n, want := range cases {
			if got := valid(name, cty.NumberFloatVal(n)); got != want {
				t.Errorf("%s = %v accepted = %v, want %v", name, n, got, want)
			}
		}
	}
}

// TestTheFaultHarnessRunsTheTerraformPolicy checks that the release rows of
// `make faults` release with the same steps, thresholds and durations as the
// pipeline: a change to one without the other fails here.
func TestTheFaultHarnessRunsTheTerraformPolicy(t *testing.T) {
	c := load(t)
	p := faults.ReleasePolicy()
	var steps []int
	for it := literal(t, attr(t, c.variables["canary_percentages"], "default")).ElementIterator(); it.Next(); {
		_, v := it.Element()
		f, _ := v.AsBigFloat().Int64()
		steps = append(steps, int(f))
	}
	if !slices.Equal(steps, p.Percentages) {
		t.Errorf("canary_percentages = %v, the harness's steps = %v", steps, p.Percentages)
	}
	for name, tt := range map[string]struct {
		terraform float64
		harness   time.Duration
		unit      time.Duration
	}{
		"analysis_minutes":     {c.defaultNumber(t, "analysis_minutes"), p.Analysis, time.Minute},
		"alert_latency_ms":     {c.defaultNumber(t, "alert_latency_ms"), p.Latency, time.Millisecond},
		"alert_window_seconds": {c.defaultNumber(t, "alert_window_seconds"), p.Window, time.Second},
		"bake_minutes":         {c.defaultNumber(t, "bake_minutes"), p.Bake, time.Minute},
	} {
		if got := time.Duration(tt.terraform * float64(tt.unit)); got != tt.harness {
			t.Errorf("%s = %s, the harness's = %s", name, got, tt.harness)
		}
	}
	if got := c.defaultNumber(t, "alert_error_ratio"); got != p.ErrorRatio {
		t.Errorf("alert_error_ratio = %v, the harness's = %v", got, p.ErrorRatio)
	}
}

// TestTheDeployerMayDeployWhatTheManifestAsks: turning the invoker IAM check off
// takes run.services.setIamPolicy, which run.admin has and run.developer lacks;
// without it the first release fails.
func TestTheDeployerMayDeployWhatTheManifestAsks(t *testing.T) {
	c := load(t)
	roles := stringList(t, c.resource(t, "google_project_iam_member.deployer").Body.Attributes["for_each"].Expr.(*hclsyntax.FunctionCallExpr).Args[0])
	for _, want := range []string{"roles/clouddeploy.jobRunner", "roles/run.admin"} {
		if !slices.Contains(roles, want) {
			t.Errorf("the deployer's roles %v lack %s", roles, want)
		}
	}
	m := loadManifest(t)
	if a, _ := m.at(t, "metadata", "annotations").(map[string]any); a["run.googleapis.com/invoker-iam-disabled"] == "true" && !slices.Contains(roles, "roles/run.admin") {
		t.Errorf("the manifest turns the invoker check off, and the deployer cannot")
	}
}

// envVar is one entry of the container's env in the manifest.
type envVar struct{ value, comment string }

// env returns the container's environment variables by name.
func (m manifest) env(t *testing.T) map[string]envVar {
	t.Helper()
	n := m.root
	for _, p := range append(container, "env") {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
				}
			}
			if next == nil {
				t.Fatalf("%s has no %s", manifestPath, p)
			}
			n = next
		case yaml.SequenceNode:
			n = n.Content[0]
		}
	}
	out := map[string]envVar{}
	for _, item := range n.Content {
		var name string
		var v envVar
		for i := 0; i+1 < len(item.Content); i += 2 {
			switch item.Content[i].Value {
			case "name":
				name = item.Content[i+1].Value
			case "value":
				v = envVar{item.Content[i+1].Value, item.Content[i+1].LineComment}
			}
		}
		out[name] = v
	}
	return out
}

// The deploy tells each region's service its region and project, so that nothing
// waits on the metadata server before the first answer, and gives the Go runtime
// the memory limit it does not read by itself.
func TestTheManifestTellsTheServiceWhatItWouldOtherwiseAsk(t *testing.T) {
	m := loadManifest(t)
	env := m.env(t)
	for name, param := range map[string]string{"REGION": "region", "GOOGLE_CLOUD_PROJECT": "project_id"} {
		if got := env[name].comment; got != "# from-param: ${"+param+"}" {
			t.Errorf("env %s's comment = %q, want it to take the deploy parameter %s", name, got, param)
		}
	}
	// The first generation environment (the second needs 512 MiB at least), and
	// no startup CPU boost (docs/operations.md, "Start-up").
	annotations, _ := m.at(t, templateAnnotations...).(map[string]any)
	if got := annotations["run.googleapis.com/execution-environment"]; got != "gen1" {
		t.Errorf("execution-environment = %v, want gen1", got)
	}
	if got := annotations["run.googleapis.com/startup-cpu-boost"]; got != "false" {
		t.Errorf("startup-cpu-boost = %v, want \"false\" (a string, as Cloud Run's annotations are)", got)
	}
	// GOMEMLIMIT is 90 % of the memory limit, in MiB.
	limit, _ := m.at(t, append(container, "resources", "limits", "memory")...).(string)
	mib, err := strconv.Atoi(strings.TrimSuffix(limit, "Mi"))
	if err != nil || !strings.HasSuffix(limit, "Mi") {
		t.Fatalf("limits.memory = %q, want NNNMi", limit)
	}
	if got, want := env["GOMEMLIMIT"].value, strconv.Itoa(mib*9/10)+"MiB"; got != want {
		t.Errorf("GOMEMLIMIT = %q, want %q: 90 %% of limits.memory %s", got, want, limit)
	}
}

// TestCIMayReleaseInThisPipelineAndNothingElse: CI's account creates releases in
// this pipeline only (the releaser role on the pipeline, not the project), acts
// as the accounts its jobs run as, and holds no project-wide role.
func TestCIMayReleaseInThisPipelineAndNothingElse(t *testing.T) {
	c := load(t)
	for addr, r := range c.resources {
		if !strings.HasPrefix(addr, "google_project_iam_member.") {
			continue
		}
		if refersTo(attr(t, r, "member"), "var.ci_service_account") {
			t.Errorf("%s grants CI's account a role on the whole project", addr)
		}
	}
	releaser := c.resource(t, "google_clouddeploy_delivery_pipeline_iam_member.ci_releaser")
	if got := literal(t, attr(t, releaser, "role")).AsString(); got != "roles/clouddeploy.releaser" {
		t.Errorf("CI's role on the pipeline = %s, want roles/clouddeploy.releaser", got)
	}
	if got := string(mustSource(t, attr(t, releaser, "name"))); got != "google_clouddeploy_delivery_pipeline.hello.name" {
		t.Errorf("CI's releaser role is on %s, want the pipeline", got)
	}
	if !refersTo(attr(t, releaser, "member"), "var.ci_service_account") {
		t.Errorf("the pipeline's releaser is not CI's account")
	}
}

// TestTheIAMResourcesWaitForTheResourceManagerAPI: project IAM goes through the
// Cloud Resource Manager API, which Terraform enables first; a project's own
// service account finds it disabled in a new project.
func TestTheIAMResourcesWaitForTheResourceManagerAPI(t *testing.T) {
	c := load(t)
	api := c.resource(t, "google_project_service.resource_manager")
	if got := literal(t, attr(t, api, "service")).AsString(); got != "cloudresourcemanager.googleapis.com" {
		t.Errorf("google_project_service.resource_manager enables %s", got)
	}
	for _, addr := range c.ofType("google_project_iam_member") {
		d, ok := c.resources[addr].Body.Attributes["depends_on"]
		if !ok || !refersTo(d.Expr, "google_project_service.resource_manager") {
			t.Errorf("%s does not depend on the Cloud Resource Manager API being enabled", addr)
		}
	}
	text, err := os.ReadFile("../docs/deploying.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "cloudresourcemanager.googleapis.com") {
		t.Errorf("docs/deploying.md's list of APIs lacks cloudresourcemanager.googleapis.com")
	}
}
