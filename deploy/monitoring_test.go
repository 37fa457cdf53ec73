package deploy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/hello/internal/faults"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// plan evaluates the Terraform's expressions as terraform plan would, as far as these
// tests need: the variables from their defaults and the test's values, converted to
// their declared types; locals from their expressions; each resource as its instances
// (count or for_each evaluated), whose attributes are what its block says and, for
// what only the provider knows after apply (id, name, ...), a placeholder naming it,
// such as google_monitoring_slo.availability[all].id.
type plan struct {
	t         *testing.T
	c         config
	vars      map[string]cty.Value
	computed  map[string]cty.Value // placeholders the test chose, by "ADDR[KEY].ATTR"
	locals    map[string]cty.Value
	localErr  map[string]hcl.Diagnostics
	resources map[string]cty.Value
	busy      map[string]bool
}

// newPlan returns a plan of c with project, domain and vars set.
func newPlan(t *testing.T, c config, vars map[string]cty.Value) *plan {
	t.Helper()
	p := &plan{t: t, c: c, vars: map[string]cty.Value{}, computed: map[string]cty.Value{},
		locals: map[string]cty.Value{"service": cty.StringVal("hello")}, localErr: map[string]hcl.Diagnostics{},
		resources: map[string]cty.Value{}, busy: map[string]bool{}}
	given := map[string]cty.Value{"project": cty.StringVal("my-project"), "domain": cty.StringVal("hello.example.com")}
	for k, v := range vars {
		given[k] = v
	}
	for name, b := range c.variables {
		v, ok := given[name]
		if !ok {
			d, ok := b.Body.Attributes["default"]
			if !ok {
				t.Fatalf("variable %s has no default and the test gives no value", name)
			}
			v = literal(t, d.Expr)
		}
		delete(given, name)
		if ty, ok := b.Body.Attributes["type"]; ok {
			want, diags := typeexpr.TypeConstraint(ty.Expr)
			if diags.HasErrors() {
				t.Fatalf("variable %s: %v", name, diags)
			}
			conv, err := convert.Convert(v, want)
			if err != nil {
				t.Fatalf("variable %s = %#v is not a %s: %v", name, v, want.FriendlyName(), err)
			}
			v = conv
		}
		p.vars[name] = v
	}
	for name := range given {
		t.Fatalf("the test sets var.%s, which the Terraform does not declare", name)
	}
	return p
}

// placeholder is what stands for an attribute only the provider knows.
func (p *plan) placeholder(addr, attr string) cty.Value {
	if v, ok := p.computed[addr+"."+attr]; ok {
		return v
	}
	return cty.StringVal(addr + "." + attr)
}

// eval evaluates e with the scope of one instance (each, count), failing the test
// when it cannot.
func (p *plan) eval(e hclsyntax.Expression, scope map[string]cty.Value) cty.Value {
	p.t.Helper()
	v, diags := e.Value(p.context(e, scope))
	if diags.HasErrors() {
		p.t.Fatalf("evaluating %s: %v %v", e.Range(), diags, p.localErr)
	}
	return v
}

func (p *plan) context(e hclsyntax.Expression, scope map[string]cty.Value) *hcl.EvalContext {
	vars := map[string]cty.Value{"var": cty.ObjectVal(p.vars), "path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal("terraform")})}
	for k, v := range scope {
		vars[k] = v
	}
	locals := map[string]cty.Value{}
	types := map[string]map[string]cty.Value{}
	for _, tr := range e.Variables() {
		root := tr.RootName()
		if len(tr) < 2 {
			continue
		}
		name, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		switch {
		case root == "local":
			if v, ok := p.local(name.Name); ok {
				locals[name.Name] = v
			}
		case p.c.resources[root+"."+name.Name] != nil:
			if types[root] == nil {
				types[root] = map[string]cty.Value{}
			}
			types[root][name.Name] = p.resource(root + "." + name.Name)
		}
	}
	vars["local"] = cty.ObjectVal(locals)
	for typ, byName := range types {
		vars[typ] = cty.ObjectVal(byName)
	}
	return &hcl.EvalContext{Variables: vars, Functions: terraformFunctions}
}

// local returns local.name's value, or false when it cannot be evaluated.
func (p *plan) local(name string) (cty.Value, bool) {
	if v, ok := p.locals[name]; ok {
		return v, true
	}
	e, ok := p.c.locals[name]
	if !ok || p.busy["local."+name] {
		return cty.NilVal, false
	}
	p.busy["local."+name] = true
	defer delete(p.busy, "local."+name)
	v, diags := e.Value(p.context(e, nil))
	if diags.HasErrors() {
		p.localErr[name] = diags
		return cty.NilVal, false
	}
	p.locals[name] = v
	return v, true
}

// instances returns the scope (each or count) of every instance of the resource
// addr, by its key ("" for a resource with neither).
func (p *plan) instances(addr string) map[string]map[string]cty.Value {
	p.t.Helper()
	b := p.c.resource(p.t, addr)
	out := map[string]map[string]cty.Value{}
	if a, ok := b.Body.Attributes["count"]; ok {
		n, _ := p.eval(a.Expr, nil).AsBigFloat().Int64()
		for i := range n {
			out[strconv.FormatInt(i, 10)] = map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(i)})}
		}
		return out
	}
	if a, ok := b.Body.Attributes["for_each"]; ok {
		v := p.eval(a.Expr, nil)
		for it := v.ElementIterator(); it.Next(); {
			k, val := it.Element()
			if v.Type().IsSetType() {
				k = val
			}
			out[k.AsString()] = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": val})}
		}
		return out
	}
	out[""] = nil
	return out
}

// instanceAddr is addr with the instance's key, as Terraform writes it but without
// quotes, so that a placeholder can stand in a filter's quoted string as an id does.
func (p *plan) instanceAddr(addr, key string) string {
	b := p.c.resource(p.t, addr)
	if b.Body.Attributes["count"] != nil || b.Body.Attributes["for_each"] != nil {
		return addr + "[" + key + "]"
	}
	return addr
}

// resource returns addr as other expressions see it: a tuple of instances (count),
// an object of instances by key (for_each), or one instance.
func (p *plan) resource(addr string) cty.Value {
	if v, ok := p.resources[addr]; ok {
		return v
	}
	if p.busy[addr] {
		return cty.DynamicVal
	}
	p.busy[addr] = true
	defer delete(p.busy, addr)
	b := p.c.resource(p.t, addr)
	instance := func(key string, scope map[string]cty.Value) cty.Value {
		attrs := map[string]cty.Value{}
		for name, a := range b.Body.Attributes {
			if name == "count" || name == "for_each" || name == "depends_on" {
				continue
			}
			if v, diags := a.Expr.Value(p.context(a.Expr, scope)); !diags.HasErrors() {
				attrs[name] = v
			}
		}
		for _, name := range []string{"id", "name", "service_id", "uptime_check_id", "email"} {
			if _, ok := attrs[name]; !ok {
				attrs[name] = p.placeholder(p.instanceAddr(addr, key), name)
			}
		}
		return cty.ObjectVal(attrs)
	}
	instances := p.instances(addr)
	var v cty.Value
	switch {
	case b.Body.Attributes["count"] != nil:
		vs := make([]cty.Value, len(instances))
		for key, scope := range instances {
			i, _ := strconv.Atoi(key)
			vs[i] = instance(key, scope)
		}
		v = cty.TupleVal(vs)
	case b.Body.Attributes["for_each"] != nil:
		byKey := map[string]cty.Value{}
		for key, scope := range instances {
			byKey[key] = instance(key, scope)
		}
		v = cty.ObjectVal(byKey)
	default:
		v = instance("", nil)
	}
	p.resources[addr] = v
	return v
}

// keys returns the sorted instance keys of addr.
func (p *plan) keys(addr string) []string {
	var out []string
	for k := range p.instances(addr) {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// str evaluates e in scope to a string.
func (p *plan) str(e hclsyntax.Expression, scope map[string]cty.Value) string {
	p.t.Helper()
	v := p.eval(e, scope)
	if v.Type() != cty.String {
		p.t.Fatalf("%s is %s, want a string", e.Range(), v.Type().FriendlyName())
	}
	return v.AsString()
}

// children returns the blocks of type name in b.
func children(b *hclsyntax.Block, name string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, c := range b.Body.Blocks {
		if c.Type == name {
			out = append(out, c)
		}
	}
	return out
}

// burnRow is one row of var.burn_rate_alerts.
type burnRow struct {
	severity          string
	long, short, rate float64
}

func burnRows(rows ...burnRow) cty.Value {
	vs := make([]cty.Value, len(rows))
	for i, r := range rows {
		vs[i] = cty.ObjectVal(map[string]cty.Value{
			"severity": cty.StringVal(r.severity), "long_window_minutes": cty.NumberFloatVal(r.long),
			"short_window_minutes": cty.NumberFloatVal(r.short), "burn_rate": cty.NumberFloatVal(r.rate),
		})
	}
	if len(vs) == 0 {
		return cty.ListValEmpty(cty.Object(map[string]cty.Type{"severity": cty.String, "long_window_minutes": cty.Number, "short_window_minutes": cty.Number, "burn_rate": cty.Number}))
	}
	return cty.ListVal(vs)
}

// The objectives and what they count: the load balancer's requests on the HTTPS URL
// map (not port 80's redirects) to the service's backend service (not another backend
// service's), 5xx against, 4xx not at all; one pair for the whole service and one per
// region, by the region that answered (backend_scope).
func TestTheObjectivesCountTheHTTPSLoadBalancersRequestsForTheServiceAndEachRegion(t *testing.T) {
	c := load(t)
	p := newPlan(t, c, nil)
	httpsMap := p.str(attr(t, c.resource(t, "google_compute_url_map.https"), "name"), nil)
	redirectMap := p.str(attr(t, c.resource(t, "google_compute_url_map.http_redirect"), "name"), nil)
	backend := p.str(attr(t, c.resource(t, "google_compute_backend_service.hello"), "name"), nil)
	want := append([]string{"all"}, c.defaultRegions(t)...)
	slices.Sort(want)
	for _, kind := range []string{"availability", "latency"} {
		addr := "google_monitoring_slo." + kind
		if got := p.keys(addr); !slices.Equal(got, want) {
			t.Errorf("%s objectives %v, want %v: one for the whole service and one per region", kind, got, want)
		}
		slo := c.resource(t, addr)
		if got := string(mustSource(t, attr(t, slo, "service"))); got != "google_monitoring_custom_service.hello[0].service_id" {
			t.Errorf("%s objectives' service = %s, want the custom service's service_id (its id, not its name)", kind, got)
		}
		for field, v := range map[string]string{"goal": "var.slo_" + kind + "_goal", "rolling_period_days": "var.slo_period_days"} {
			if rs := refs(attr(t, slo, field)); !slices.Equal(rs, []string{v}) {
				t.Errorf("%s objectives' %s = %v, want %s", kind, field, rs, v)
			}
		}
		for key, scope := range p.instances(addr) {
			var filters map[string]string
			if kind == "availability" {
				ratio := child(t, child(t, slo, "request_based_sli"), "good_total_ratio")
				filters = map[string]string{
					"bad":   p.str(attr(t, ratio, "bad_service_filter"), scope),
					"total": p.str(attr(t, ratio, "total_service_filter"), scope),
				}
				if _, ok := ratio.Body.Attributes["good_service_filter"]; ok {
					t.Errorf("the availability objective sets good, bad and total filters; Cloud Monitoring takes exactly two")
				}
				if !strings.Contains(filters["bad"], `metric.label.response_code_class = "500"`) {
					t.Errorf("availability %s: bad = %s, want the 5xx class", key, filters["bad"])
				}
				if !strings.Contains(filters["total"], `metric.label.response_code_class != "400"`) || strings.Contains(filters["total"], `"500"`) {
					t.Errorf("availability %s: total = %s, want every class but 4xx (Cloud Armor's 429s, clients' mistakes)", key, filters["total"])
				}
			} else {
				cut := child(t, child(t, slo, "request_based_sli"), "distribution_cut")
				filters = map[string]string{"distribution": p.str(attr(t, cut, "distribution_filter"), scope)}
				if rs := refs(attr(t, cut, "range", "max")); !slices.Equal(rs, []string{"var.slo_latency_threshold_ms"}) {
					t.Errorf("the latency objectives' range.max = %v, want var.slo_latency_threshold_ms", rs)
				}
			}
			metric := `metric.type = "loadbalancing.googleapis.com/https/request_count"`
			if kind == "latency" {
				// From the load balancer's sending to the region to the last byte back:
				// not total_latencies, which adds the client's own round trips.
				metric = `metric.type = "loadbalancing.googleapis.com/https/backend_latencies"`
			}
			for name, f := range filters {
				for _, need := range []string{metric, `resource.type = "https_lb_rule"`, `resource.label.url_map_name = "` + httpsMap + `"`, `resource.label.backend_target_name = "` + backend + `"`} {
					if !strings.Contains(f, need) {
						t.Errorf("%s %s: %s filter %s lacks %s", kind, key, name, f, need)
					}
				}
				if strings.Contains(f, redirectMap) {
					t.Errorf("%s %s: %s filter %s counts port 80's redirects", kind, key, name, f)
				}
				scoped := strings.Contains(f, "resource.label.backend_scope")
				if key == "all" && scoped {
					t.Errorf("the whole service's %s %s filter %s is limited to a region", kind, name, f)
				}
				if key != "all" && !strings.Contains(f, `resource.label.backend_scope = "`+key+`"`) {
					t.Errorf("%s %s: %s filter %s is not limited to %s's backend", kind, key, name, f, key)
				}
			}
		}
	}

	// Nothing of it exists without the load balancer.
	off := newPlan(t, c, map[string]cty.Value{"load_balancer": cty.False, "notification_emails": strs("oncall@example.com")})
	for _, addr := range []string{
		"google_monitoring_custom_service.hello", "google_monitoring_slo.availability", "google_monitoring_slo.latency",
		"google_monitoring_alert_policy.burn_rate", "google_monitoring_uptime_check_config.hello", "google_monitoring_alert_policy.uptime",
		"google_monitoring_dashboard.hello", "google_monitoring_notification_channel.email",
	} {
		if got := off.keys(addr); len(got) != 0 {
			t.Errorf("with load_balancer = false, %s has instances %v", addr, got)
		}
	}
}

// Every objective gets one alert policy per row of var.burn_rate_alerts, which opens
// only when both the long and the short window burn faster than the row's rate.
func TestEachObjectiveHasABurnRateAlertPerRowOpeningWhenBothWindowsBurn(t *testing.T) {
	c := load(t)
	policy := c.resource(t, "google_monitoring_alert_policy.burn_rate")
	for _, tt := range []struct {
		name     string
		rows     []burnRow
		emails   []string
		regional bool
	}{
		{"defaults", nil, nil, false},
		{"one row of our own", []burnRow{{"page", 120, 10, 10}}, []string{"a@example.com", "b@example.com"}, false},
		{"the regions' objectives too", nil, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]cty.Value{"notification_emails": strs(tt.emails...), "regional_burn_rate_alerts": cty.BoolVal(tt.regional)}
			rows := tt.rows
			if rows != nil {
				vars["burn_rate_alerts"] = burnRows(rows...)
			}
			p := newPlan(t, c, vars)
			if rows == nil {
				for it := p.vars["burn_rate_alerts"].ElementIterator(); it.Next(); {
					_, r := it.Element()
					long, _ := r.GetAttr("long_window_minutes").AsBigFloat().Float64()
					short, _ := r.GetAttr("short_window_minutes").AsBigFloat().Float64()
					rate, _ := r.GetAttr("burn_rate").AsBigFloat().Float64()
					rows = append(rows, burnRow{r.GetAttr("severity").AsString(), long, short, rate})
				}
			}
			scopes := []string{"all"}
			if tt.regional {
				scopes = append(scopes, c.defaultRegions(t)...)
			}
			var want []string
			for _, kind := range []string{"availability", "latency"} {
				for _, s := range scopes {
					for _, r := range rows {
						want = append(want, fmt.Sprintf("%s-%s-%vm", kind, s, r.long))
					}
				}
			}
			slices.Sort(want)
			instances := p.instances("google_monitoring_alert_policy.burn_rate")
			if got := p.keys("google_monitoring_alert_policy.burn_rate"); !slices.Equal(got, want) {
				t.Fatalf("burn-rate policies %v, want %v", got, want)
			}
			for key, scope := range instances {
				var row burnRow
				for _, r := range rows {
					if strings.HasSuffix(key, fmt.Sprintf("-%vm", r.long)) {
						row = r
					}
				}
				kind, rest, _ := strings.Cut(key, "-")
				sloScope := strings.TrimSuffix(rest, fmt.Sprintf("-%vm", row.long))
				sloID := fmt.Sprintf("google_monitoring_slo.%s[%s].id", kind, sloScope)

				if got := p.str(attr(t, policy, "combiner"), scope); got != "AND" {
					t.Errorf("%s: combiner %s, want AND: the short window alone would page on a blip, the long alone would stay open long after", key, got)
				}
				wantSeverity := map[string]string{"page": "CRITICAL", "ticket": "WARNING"}[row.severity]
				if got := p.str(attr(t, policy, "severity"), scope); got != wantSeverity {
					t.Errorf("%s: severity %s, want %s for a %s", key, got, wantSeverity, row.severity)
				}
				conditions := children(policy, "conditions")
				if len(conditions) != 2 {
					t.Fatalf("%s has %d conditions, want a long and a short window", key, len(conditions))
				}
				var windows []string
				for _, cond := range conditions {
					th := child(t, cond, "condition_threshold")
					windows = append(windows, p.str(attr(t, th, "filter"), scope))
					if got := p.str(attr(t, th, "comparison"), scope); got != "COMPARISON_GT" {
						t.Errorf("%s compares %s, want COMPARISON_GT", key, got)
					}
					if got := p.str(attr(t, th, "duration"), scope); got != "0s" {
						t.Errorf("%s waits %s, want 0s: the window is the wait", key, got)
					}
					if got, _ := p.eval(attr(t, th, "threshold_value"), scope).AsBigFloat().Float64(); got != row.rate {
						t.Errorf("%s: threshold %v, want the row's burn rate %v", key, got, row.rate)
					}
					if len(children(th, "aggregations")) > 0 {
						t.Errorf("%s aggregates select_slo_burn_rate, which takes none", key)
					}
				}
				slices.Sort(windows)
				wantWindows := []string{
					fmt.Sprintf("select_slo_burn_rate(%q, \"%vs\")", sloID, row.long*60),
					fmt.Sprintf("select_slo_burn_rate(%q, \"%vs\")", sloID, row.short*60),
				}
				slices.Sort(wantWindows)
				if !slices.Equal(windows, wantWindows) {
					t.Errorf("%s watches %v, want %v", key, windows, wantWindows)
				}

				var channels []string
				for it := p.eval(attr(t, policy, "notification_channels"), scope).ElementIterator(); it.Next(); {
					_, v := it.Element()
					channels = append(channels, v.AsString())
				}
				var wantChannels []string
				for _, e := range tt.emails {
					wantChannels = append(wantChannels, fmt.Sprintf("google_monitoring_notification_channel.email[%s].name", e))
				}
				if !slices.Equal(channels, wantChannels) {
					t.Errorf("%s notifies %v, want %v", key, channels, wantChannels)
				}

				doc := child(t, policy, "documentation")
				content := p.str(attr(t, doc, "content"), scope)
				needs := []string{"gcloud deploy targets rollback", "make probe URL=https://hello.example.com/", "gcloud run revisions list --service=hello"}
				if sloScope != "all" {
					target := "hello-others"
					if sloScope == literal(t, attr(t, c.variables["canary_region"], "default")).AsString() {
						target = "hello-" + sloScope
					}
					needs = append(needs, "rollback "+target+" ", "--region="+sloScope)
				}
				for _, need := range needs {
					if !strings.Contains(content, need) {
						t.Errorf("%s's documentation lacks %q:\n%s", key, need, content)
					}
				}
				if got := p.str(attr(t, doc, "mime_type"), scope); got != "text/markdown" {
					t.Errorf("%s's documentation is %s, want text/markdown", key, got)
				}
				if got := string(mustSource(t, attr(t, child(t, doc, "links"), "url"))); got != "local.dashboard_url" {
					t.Errorf("%s's documentation links %s, want the dashboard", key, got)
				}
			}
		})
	}
}

// Two checks, of the greeting and of the health check, through the load balancer, from
// three continents, within the free tier.
func TestUptimeChecksAskForTheGreetingAndHealthFromThreeContinentsWithinTheFreeTier(t *testing.T) {
	c := load(t)
	check := c.resource(t, "google_monitoring_uptime_check_config.hello")
	p := newPlan(t, c, map[string]cty.Value{"uptime_check_period_seconds": cty.NumberIntVal(300)})
	want := map[string][2]string{"/": {"Hello world!", "200"}, "/health/": {`"status":"ok"`, "200"}}
	got := map[string][2]string{}
	for key, scope := range p.instances("google_monitoring_uptime_check_config.hello") {
		http := child(t, check, "http_check")
		path := p.str(attr(t, http, "path"), scope)
		status, _ := p.eval(attr(t, http, "accepted_response_status_codes", "status_value"), scope).AsBigFloat().Int64()
		got[path] = [2]string{p.str(attr(t, check, "content_matchers", "content"), scope), strconv.FormatInt(status, 10)}
		if len(children(http, "accepted_response_status_codes")) != 1 {
			t.Errorf("%s accepts more than one status", key)
		}
		if port, _ := p.eval(attr(t, http, "port"), scope).AsBigFloat().Int64(); port != 443 {
			t.Errorf("%s checks port %d, want 443", key, port)
		}
		for _, field := range []string{"use_ssl", "validate_ssl"} {
			if !p.eval(attr(t, http, field), scope).True() {
				t.Errorf("%s: %s is not true: an expired or missing certificate would pass", key, field)
			}
		}
		if got := p.str(attr(t, check, "content_matchers", "matcher"), scope); got != "CONTAINS_STRING" {
			t.Errorf("%s matches %s, want CONTAINS_STRING", key, got)
		}
		if n := len(children(check, "content_matchers")); n != 1 {
			t.Errorf("%s has %d content matchers; Cloud Monitoring uses only the first", key, n)
		}
		if got := p.str(attr(t, check, "period"), scope); got != "300s" {
			t.Errorf("%s runs every %s with uptime_check_period_seconds = 300", key, got)
		}
		if got := p.str(attr(t, check, "timeout"), scope); got != "10s" {
			t.Errorf("%s times out after %s, want 10s", key, got)
		}
		if rs := refs(attr(t, check, "selected_regions")); !slices.Equal(rs, []string{"var.uptime_check_regions"}) {
			t.Errorf("%s runs from %v, want var.uptime_check_regions", key, rs)
		}
		res := child(t, check, "monitored_resource")
		labels := p.eval(attr(t, res, "labels"), scope)
		if p.str(attr(t, res, "type"), scope) != "uptime_url" || labels.GetAttr("host").AsString() != "hello.example.com" {
			t.Errorf("%s checks %s %s, want uptime_url of var.domain", key, p.str(attr(t, res, "type"), scope), labels.GetAttr("host").AsString())
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("uptime checks (path: body, status) %v, want %v", got, want)
	}

	regions := stringList(t, attr(t, c.variables["uptime_check_regions"], "default"))
	if n := len(continents(regions)); n < 3 {
		t.Errorf("uptime_check_regions defaults to %v: %d continents, want 3", regions, n)
	}
	// Executions a month: every check from every checker, every period, 30 days.
	period, _ := literal(t, attr(t, c.variables["uptime_check_period_seconds"], "default")).AsBigFloat().Int64()
	checkers := 0
	for _, r := range regions {
		checkers++
		if r == "USA" {
			checkers += 2
		}
	}
	checks := len(newPlan(t, c, nil).instances("google_monitoring_uptime_check_config.hello"))
	if n := int64(checks*checkers) * 30 * 24 * 3600 / period; n > 1_000_000 {
		t.Errorf("the default uptime checks run %d times a month, over the million a project gets free", n)
	}
}

// continents returns the continents of Cloud Monitoring's checker regions.
func continents(regions []string) []string {
	var out []string
	for _, r := range regions {
		if strings.HasPrefix(r, "USA") {
			r = "North America"
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// The uptime alert counts the checker locations whose latest result failed, and opens
// at two: one location failing is as likely its own network as ours.
func TestTheUptimeAlertOpensWhenTwoOrMoreLocationsFail(t *testing.T) {
	c := load(t)
	policy := c.resource(t, "google_monitoring_alert_policy.uptime")
	p := newPlan(t, c, nil)
	if got, want := p.keys("google_monitoring_alert_policy.uptime"), p.keys("google_monitoring_uptime_check_config.hello"); !slices.Equal(got, want) || len(got) == 0 {
		t.Fatalf("uptime alerts %v, checks %v: want one alert per check", got, want)
	}
	for key, scope := range p.instances("google_monitoring_alert_policy.uptime") {
		if n := len(children(policy, "conditions")); n != 1 {
			t.Fatalf("%s has %d conditions, want 1", key, n)
		}
		th := child(t, child(t, policy, "conditions"), "condition_threshold")
		filter := p.str(attr(t, th, "filter"), scope)
		for _, need := range []string{
			`metric.type = "monitoring.googleapis.com/uptime_check/check_passed"`,
			fmt.Sprintf(`metric.label.check_id = "google_monitoring_uptime_check_config.hello[%s].uptime_check_id"`, key),
			`resource.type = "uptime_url"`,
		} {
			if !strings.Contains(filter, need) {
				t.Errorf("%s's filter %s lacks %s", key, filter, need)
			}
		}
		agg := child(t, th, "aggregations")
		for field, want := range map[string]string{"per_series_aligner": "ALIGN_NEXT_OLDER", "cross_series_reducer": "REDUCE_COUNT_FALSE"} {
			if got := p.str(attr(t, agg, field), scope); got != want {
				t.Errorf("%s: %s = %s, want %s", key, field, got, want)
			}
		}
		// Every location's latest result, whatever the check's period.
		alignment, err := strconv.Atoi(strings.TrimSuffix(p.str(attr(t, agg, "alignment_period"), scope), "s"))
		if err != nil || alignment < 900 {
			t.Errorf("%s aligns over %ds, want at least the longest check period, 900 s", key, alignment)
		}
		if got := stringList(t, attr(t, agg, "group_by_fields")); !slices.Equal(got, []string{"resource.label.*"}) {
			t.Errorf("%s groups by %v, want [resource.label.*]: the locations counted together", key, got)
		}
		comparison := p.str(attr(t, th, "comparison"), scope)
		threshold, _ := p.eval(attr(t, th, "threshold_value"), scope).AsBigFloat().Float64()
		for failing, want := range map[float64]bool{0: false, 1: false, 2: true, 3: true} {
			fires := comparison == "COMPARISON_GT" && failing > threshold || comparison == "COMPARISON_LT" && failing < threshold
			if fires != want {
				t.Errorf("%s with %v locations failing: opens = %v, want %v (%s %v)", key, failing, fires, want, comparison, threshold)
			}
		}
		if got := p.str(attr(t, policy, "severity"), scope); got != "CRITICAL" {
			t.Errorf("%s's severity %s, want CRITICAL: users cannot reach the service", key, got)
		}
		if got := string(mustSource(t, attr(t, policy, "notification_channels"))); got != "local.notification_channels" {
			t.Errorf("%s notifies %s, want local.notification_channels", key, got)
		}
	}
}

// A check block warns on every plan without failing it: the alerts are worth having
// before anyone is named, but nobody should believe they page someone.
func TestAPlanWarnsWhileTheAlertsTellNobody(t *testing.T) {
	c := load(t)
	var condition hclsyntax.Expression
	var message string
	for _, b := range c.checks {
		for _, a := range children(b, "assert") {
			if refersTo(attr(t, a, "condition"), "var.notification_emails") {
				condition, message = attr(t, a, "condition"), literal(t, attr(t, a, "error_message")).AsString()
			}
		}
	}
	if condition == nil {
		t.Fatalf("no check block asserts on var.notification_emails")
	}
	for _, tt := range []struct {
		lb     bool
		emails []string
		warns  bool
	}{
		{true, nil, true},
		{true, []string{"oncall@example.com"}, false},
		{false, nil, false}, // no alerts to tell anyone about
	} {
		p := newPlan(t, c, map[string]cty.Value{"load_balancer": cty.BoolVal(tt.lb), "notification_emails": strs(tt.emails...)})
		if warns := !p.eval(condition, nil).True(); warns != tt.warns {
			t.Errorf("load_balancer = %v, notification_emails = %v: warns = %v, want %v", tt.lb, tt.emails, warns, tt.warns)
		}
	}
	if !strings.Contains(message, "notification_emails") || !strings.Contains(message, "nobody") {
		t.Errorf("the warning %q does not say that nobody is told, or what to set", message)
	}
	if d := literal(t, attr(t, c.variables["notification_emails"], "default")); d.LengthInt() != 0 {
		t.Errorf("notification_emails defaults to %#v; an address of ours would be a stranger's", d)
	}
}

// tile is a dashboard tile, as Cloud Monitoring's dashboard JSON has it.
type tile struct {
	XPos, YPos, Width, Height int
	Widget                    struct {
		Title     string
		Scorecard *struct {
			TimeSeriesQuery query
			GaugeView       *struct{ LowerBound, UpperBound float64 }
		}
		XYChart *struct {
			DataSets []struct {
				PlotType        string
				TimeSeriesQuery query
			}
			Thresholds []struct{ Value float64 }
		}
	}
}

type query struct {
	TimeSeriesFilter      *seriesFilter
	TimeSeriesFilterRatio *struct{ Numerator, Denominator seriesFilter }
}

type seriesFilter struct {
	Filter      string
	Aggregation struct {
		AlignmentPeriod, PerSeriesAligner, CrossSeriesReducer string
		GroupByFields                                         []string
	}
}

// dashboard evaluates the dashboard's JSON and decodes its tiles.
func dashboard(t *testing.T, p *plan) (name string, tiles []tile) {
	t.Helper()
	instances := p.instances("google_monitoring_dashboard.hello")
	if len(instances) != 1 {
		t.Fatalf("%d dashboards, want 1", len(instances))
	}
	text := p.str(attr(t, p.c.resource(t, "google_monitoring_dashboard.hello"), "dashboard_json"), instances["0"])
	var d struct {
		DisplayName  string
		MosaicLayout struct {
			Columns int
			Tiles   []tile
		}
	}
	if err := json.Unmarshal([]byte(text), &d); err != nil {
		t.Fatalf("the dashboard's JSON does not decode: %v\n%s", err, text)
	}
	if d.MosaicLayout.Columns != 48 {
		t.Errorf("the dashboard has %d columns, want Cloud Monitoring's 48", d.MosaicLayout.Columns)
	}
	// No tile outside the grid or over another.
	for i, a := range d.MosaicLayout.Tiles {
		if a.XPos < 0 || a.Width <= 0 || a.Height <= 0 || a.XPos+a.Width > 48 {
			t.Errorf("tile %q at x %d, width %d, height %d is off the 48-column grid", a.Widget.Title, a.XPos, a.Width, a.Height)
		}
		for _, b := range d.MosaicLayout.Tiles[i+1:] {
			if a.XPos < b.XPos+b.Width && b.XPos < a.XPos+a.Width && a.YPos < b.YPos+b.Height && b.YPos < a.YPos+a.Height {
				t.Errorf("tiles %q and %q overlap", a.Widget.Title, b.Widget.Title)
			}
		}
	}
	return d.DisplayName, d.MosaicLayout.Tiles
}

// A panel the dashboard must have: a title that says what a line is, and the query
// that makes it so.
type panel struct {
	title, filter, reducer string
	groupBy                []string
}

// During an incident the dashboard says where (a line per region), what (a line per
// revision) and since when (the time axis), and how much budget is left.
func TestTheDashboardShowsWhichRegionWhichRevisionAndTheBudgetLeft(t *testing.T) {
	c := load(t)
	p := newPlan(t, c, map[string]cty.Value{"slo_latency_threshold_ms": cty.NumberIntVal(750)})
	name, tiles := dashboard(t, p)
	lb := `resource.type = "https_lb_rule" AND resource.label.url_map_name = "hello-https" AND resource.label.backend_target_name = "hello"`
	run := `resource.type = "cloud_run_revision" AND resource.label.service_name = "hello"`
	region := []string{"resource.label.backend_scope"}
	revision := []string{"resource.label.location", "resource.label.revision_name"}
	panels := []panel{
		{"Requests/s at the load balancer, per region", `loadbalancing.googleapis.com/https/request_count" AND ` + lb, "REDUCE_SUM", region},
		{"p50 backend latency, per region", `loadbalancing.googleapis.com/https/backend_latencies" AND ` + lb, "REDUCE_PERCENTILE_50", region},
		{"p99 backend latency, per region", `loadbalancing.googleapis.com/https/backend_latencies" AND ` + lb, "REDUCE_PERCENTILE_99", region},
		{"Cloud Run requests/s, per region and revision", run + ` AND metric.type = "run.googleapis.com/request_count"`, "REDUCE_SUM", revision},
		{"Cloud Run 5xx/s, per region and revision", `"run.googleapis.com/request_count" AND metric.label.response_code_class = "5xx"`, "REDUCE_SUM", revision},
		{"Cloud Run instances, per region", `"run.googleapis.com/container/instance_count"`, "REDUCE_SUM", []string{"resource.label.location"}},
		{"Requests Cloud Armor denied", `resource.label.policy_name = "hello-edge" AND metric.label.blocked = "true"`, "REDUCE_SUM", nil},
		{"Uptime checks passing, per check and checker location", `check_passed" AND resource.type = "uptime_url" AND resource.label.host = "hello.example.com"`, "REDUCE_MEAN", []string{"metric.label.check_id", "metric.label.checker_location"}},
	}
	byTitle := map[string]tile{}
	for _, tl := range tiles {
		byTitle[tl.Widget.Title] = tl
	}
	find := func(prefix string) (tile, bool) {
		for title, tl := range byTitle {
			if strings.HasPrefix(title, prefix) {
				return tl, true
			}
		}
		return tile{}, false
	}
	for _, want := range panels {
		tl, ok := find(want.title)
		if !ok || tl.Widget.XYChart == nil || len(tl.Widget.XYChart.DataSets) != 1 || tl.Widget.XYChart.DataSets[0].TimeSeriesQuery.TimeSeriesFilter == nil {
			t.Errorf("no chart %q with one time series filter", want.title)
			continue
		}
		f := tl.Widget.XYChart.DataSets[0].TimeSeriesQuery.TimeSeriesFilter
		if !strings.Contains(f.Filter, want.filter) {
			t.Errorf("chart %q filters %s, want %s", want.title, f.Filter, want.filter)
		}
		if f.Aggregation.CrossSeriesReducer != want.reducer || !slices.Equal(f.Aggregation.GroupByFields, want.groupBy) {
			t.Errorf("chart %q reduces with %s by %v, want %s by %v", want.title, f.Aggregation.CrossSeriesReducer, f.Aggregation.GroupByFields, want.reducer, want.groupBy)
		}
	}
	if tl, ok := find("p99 backend latency"); ok && (len(tl.Widget.XYChart.Thresholds) != 1 || tl.Widget.XYChart.Thresholds[0].Value != 750) {
		t.Errorf("the p99 chart's threshold lines %v, want the latency objective's 750 ms", tl.Widget.XYChart.Thresholds)
	}

	// The error share is the availability objective's: 5xx over every class but 4xx.
	if tl, ok := find("5xx share of requests, per region"); !ok || tl.Widget.XYChart == nil || tl.Widget.XYChart.DataSets[0].TimeSeriesQuery.TimeSeriesFilterRatio == nil {
		t.Errorf("no chart of the 5xx share per region as a ratio")
	} else {
		r := tl.Widget.XYChart.DataSets[0].TimeSeriesQuery.TimeSeriesFilterRatio
		for part, want := range map[string]string{r.Numerator.Filter: `response_code_class = "500"`, r.Denominator.Filter: `response_code_class != "400"`} {
			if !strings.Contains(part, want) || !strings.Contains(part, lb) {
				t.Errorf("the 5xx share's filter %s lacks %s on the HTTPS URL map", part, want)
			}
		}
		for _, s := range []seriesFilter{r.Numerator, r.Denominator} {
			if !slices.Equal(s.Aggregation.GroupByFields, region) {
				t.Errorf("the 5xx share groups by %v, want %v", s.Aggregation.GroupByFields, region)
			}
		}
	}

	// The budget left of the whole service's two objectives, as scorecards.
	var budgets []string
	for _, tl := range tiles {
		if s := tl.Widget.Scorecard; s != nil && s.TimeSeriesQuery.TimeSeriesFilter != nil {
			budgets = append(budgets, s.TimeSeriesQuery.TimeSeriesFilter.Filter)
			if s.TimeSeriesQuery.TimeSeriesFilter.Aggregation.PerSeriesAligner != "ALIGN_NEXT_OLDER" || s.GaugeView == nil || s.GaugeView.UpperBound != 1 {
				t.Errorf("the scorecard %q is not the latest budget fraction on a gauge up to 1", tl.Widget.Title)
			}
		}
	}
	slices.Sort(budgets)
	wantBudgets := []string{`select_slo_budget_fraction("google_monitoring_slo.availability[all].id")`, `select_slo_budget_fraction("google_monitoring_slo.latency[all].id")`}
	if !slices.Equal(budgets, wantBudgets) {
		t.Errorf("the budget scorecards read %v, want %v", budgets, wantBudgets)
	}

	// The panels the alerts tell the on-call to open are there.
	for _, addr := range []string{"google_monitoring_alert_policy.burn_rate", "google_monitoring_alert_policy.uptime"} {
		doc := child(t, c.resource(t, addr), "documentation")
		for key, scope := range p.instances(addr) {
			content := p.str(attr(t, doc, "content"), scope)
			if !strings.Contains(content, `dashboard "`+name+`"`) {
				t.Errorf("%s[%s]'s documentation does not name the dashboard %q", addr, key, name)
			}
			named := strings.Split(content, `"`)
			for i := 1; i < len(named); i += 2 {
				if strings.Contains(named[i], "per region") || strings.Contains(named[i], "per check") {
					if _, ok := find(named[i]); !ok {
						t.Errorf("%s[%s]'s documentation names the panel %q, which the dashboard lacks", addr, key, named[i])
					}
				}
			}
		}
	}

	// Without Cloud Armor, no Cloud Armor panel, and the tiles still fit.
	_, tiles = dashboard(t, newPlan(t, c, map[string]cty.Value{"cloud_armor": cty.False}))
	for _, tl := range tiles {
		if strings.Contains(tl.Widget.Title, "Cloud Armor") {
			t.Errorf("with cloud_armor = false the dashboard still has %q", tl.Widget.Title)
		}
	}
	if len(tiles) != len(byTitle)-1 {
		t.Errorf("without Cloud Armor %d tiles, with it %d: want exactly one fewer", len(tiles), len(byTitle))
	}
}

func TestTheOutputsGiveTheDashboardTheObjectivesAndWhoIsTold(t *testing.T) {
	c := load(t)
	p := newPlan(t, c, map[string]cty.Value{"notification_emails": strs("a@example.com", "b@example.com")})
	p.computed[`google_monitoring_dashboard.hello[0].id`] = cty.StringVal("projects/123456/dashboards/0a1b2c")
	if got, want := p.str(attr(t, c.outputs["monitoring_dashboard"], "value"), nil), "https://console.cloud.google.com/monitoring/dashboards/builder/0a1b2c?project=my-project"; got != want {
		t.Errorf("monitoring_dashboard = %s, want %s", got, want)
	}
	ids := p.eval(attr(t, c.outputs["slo_ids"], "value"), nil)
	if ids.LengthInt() != 10 || ids.GetAttr("latency-europe-west1").AsString() != "google_monitoring_slo.latency[europe-west1].id" {
		t.Errorf("slo_ids = %#v, want the ten objectives' ids by name", ids)
	}
	var told []string
	for it := p.eval(attr(t, c.outputs["alerts_notify"], "value"), nil).ElementIterator(); it.Next(); {
		_, v := it.Element()
		told = append(told, v.AsString())
	}
	if !slices.Equal(told, []string{"a@example.com", "b@example.com"}) {
		t.Errorf("alerts_notify = %v, want the two addresses", told)
	}
	off := newPlan(t, c, map[string]cty.Value{"load_balancer": cty.False})
	if v := off.eval(attr(t, c.outputs["monitoring_dashboard"], "value"), nil); !v.IsNull() {
		t.Errorf("monitoring_dashboard without the load balancer = %#v, want null", v)
	}
}

// accepted reports whether every validation of var.name accepts v.
func accepted(t *testing.T, c config, name string, v cty.Value) bool {
	t.Helper()
	b := c.variables[name]
	validations := children(b, "validation")
	if len(validations) == 0 {
		t.Fatalf("var.%s has no validation", name)
	}
	ty, diags := typeexpr.TypeConstraint(attr(t, b, "type"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	v, err := convert.Convert(v, ty)
	if err != nil {
		t.Fatalf("var.%s = %#v is not a %s: %v", name, v, ty.FriendlyName(), err)
	}
	p := &plan{t: t, c: c, vars: map[string]cty.Value{name: v}}
	for _, val := range validations {
		if msg := literal(t, attr(t, val, "error_message")).AsString(); !strings.Contains(msg, name) {
			t.Errorf("var.%s's error message %q does not name it", name, msg)
		}
		if !p.eval(attr(t, val, "condition"), nil).True() {
			return false
		}
	}
	return true
}

func TestMonitoringVariablesRefuseValuesThatCannotWork(t *testing.T) {
	c := load(t)
	for name, cases := range map[string]map[float64]bool{
		"slo_availability_goal":       {0.999: true, 0.9: true, 0.9999: true, 0.99999: false, 0.89: false, 1: false},
		"slo_latency_goal":            {0.99: true, 0.5: true, 0.9999: true, 0.49: false, 1: false},
		"slo_latency_threshold_ms":    {500: true, 1: true, 60000: true, 0: false, 0.5: false, 60001: false},
		"slo_period_days":             {28: true, 1: true, 30: true, 0: false, 31: false, 7.5: false},
		"uptime_check_period_seconds": {60: true, 300: true, 900: true, 120: false, 0: false, 30: false},
	} {
		for n, want := range cases {
			if got := accepted(t, c, name, cty.NumberFloatVal(n)); got != want {
				t.Errorf("%s = %v accepted = %v, want %v", name, n, got, want)
			}
		}
	}
	for _, tt := range []struct {
		emails []string
		want   bool
	}{
		{nil, true}, {[]string{"oncall@example.com"}, true}, {[]string{"a@b.co", "x.y+z@example.org"}, true},
		{[]string{"oncall"}, false}, {[]string{"@example.com"}, false}, {[]string{"on call@example.com"}, false}, {[]string{"a@example"}, false},
	} {
		if got := accepted(t, c, "notification_emails", strs(tt.emails...)); got != tt.want {
			t.Errorf("notification_emails = %q accepted = %v, want %v", tt.emails, got, tt.want)
		}
	}
	for _, tt := range []struct {
		regions []string
		want    bool
	}{
		{[]string{"USA_VIRGINIA", "EUROPE", "ASIA_PACIFIC"}, true},
		{[]string{"USA", "SOUTH_AMERICA", "EUROPE", "ASIA_PACIFIC"}, true},
		{[]string{"USA", "USA_OREGON", "EUROPE"}, false},             // two continents
		{[]string{"EUROPE", "ASIA_PACIFIC"}, false},                  // two checkers
		{[]string{"USA_VIRGINIA", "EUROPE", "MARS"}, false},          // not a region
		{[]string{"europe", "ASIA_PACIFIC", "SOUTH_AMERICA"}, false}, // the API's enum is upper case
		{[]string{"EUROPE", "EUROPE", "ASIA_PACIFIC", "USA"}, false}, // twice
	} {
		if got := accepted(t, c, "uptime_check_regions", strs(tt.regions...)); got != tt.want {
			t.Errorf("uptime_check_regions = %v accepted = %v, want %v", tt.regions, got, tt.want)
		}
	}
	page, ticket := burnRow{"page", 60, 5, 14.4}, burnRow{"ticket", 4320, 360, 1}
	for _, tt := range []struct {
		name string
		rows []burnRow
		want bool
	}{
		{"the workbook's", []burnRow{page, {"page", 360, 30, 6}, ticket}, true},
		{"one page", []burnRow{page}, true},
		{"no row", nil, false},
		{"only a ticket", []burnRow{ticket}, false},
		{"another severity", []burnRow{page, {"urgent", 360, 30, 6}}, false},
		{"short as long as long", []burnRow{{"page", 60, 60, 14.4}}, false},
		{"short longer than long", []burnRow{{"page", 60, 120, 14.4}}, false},
		{"no short window", []burnRow{{"page", 60, 0, 14.4}}, false},
		{"part of a minute", []burnRow{page, {"ticket", 90, 7.5, 1}}, false},
		{"no burn", []burnRow{{"page", 60, 5, 0}}, false},
		{"two rows, one long window", []burnRow{page, {"ticket", 60, 10, 1}}, false},
	} {
		if got := accepted(t, c, "burn_rate_alerts", burnRows(tt.rows...)); got != tt.want {
			t.Errorf("burn_rate_alerts %s %v accepted = %v, want %v", tt.name, tt.rows, got, tt.want)
		}
	}
	if !accepted(t, c, "burn_rate_alerts", literal(t, attr(t, c.variables["burn_rate_alerts"], "default"))) {
		t.Errorf("burn_rate_alerts' default is refused")
	}

	// What the variables' validations cannot see, each alone: a long window past the
	// period, and a rate no error ratio can reach.
	service := c.resource(t, "google_monitoring_custom_service.hello")
	preconditions := children(child(t, service, "lifecycle"), "precondition")
	passes := func(vars map[string]cty.Value) bool {
		p := newPlan(t, c, vars)
		for _, pc := range preconditions {
			if !p.eval(attr(t, pc, "condition"), nil).True() {
				return false
			}
		}
		return true
	}
	for _, tt := range []struct {
		name string
		vars map[string]cty.Value
		want bool
	}{
		{"the defaults", nil, true},
		{"a 3-day window in 3 days", map[string]cty.Value{"slo_period_days": cty.NumberIntVal(3)}, true},
		{"a 3-day window in 2 days", map[string]cty.Value{"slo_period_days": cty.NumberIntVal(2)}, false},
		{"14.4x with a 90 % goal", map[string]cty.Value{"slo_availability_goal": cty.NumberFloatVal(0.9)}, false},
		{"14.4x with a 92 % latency goal", map[string]cty.Value{"slo_latency_goal": cty.NumberFloatVal(0.92)}, false},
		{"14.4x with a 95 % latency goal", map[string]cty.Value{"slo_latency_goal": cty.NumberFloatVal(0.95)}, true},
	} {
		if got := passes(tt.vars); got != tt.want {
			t.Errorf("%s: preconditions pass = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestTheFaultHarnessJudgesWithTheseObjectives: `make faults` computes what the
// burn-rate alerts would have done with every row (FAILOVER.md, RELEASES.md) from
// faults.DefaultObjectives; a change to the Terraform's goals, period, windows or
// rates without the harness's, or the other way round, fails here.
func TestTheFaultHarnessJudgesWithTheseObjectives(t *testing.T) {
	c := load(t)
	o := faults.DefaultObjectives()
	if got := c.defaultNumber(t, "slo_availability_goal"); got != o.Availability {
		t.Errorf("slo_availability_goal = %v, the harness's = %v", got, o.Availability)
	}
	if got := c.defaultNumber(t, "slo_latency_goal"); got != o.Latency {
		t.Errorf("slo_latency_goal = %v, the harness's = %v", got, o.Latency)
	}
	if got := time.Duration(c.defaultNumber(t, "slo_latency_threshold_ms")) * time.Millisecond; got != o.LatencyThreshold {
		t.Errorf("slo_latency_threshold_ms = %s, the harness's = %s", got, o.LatencyThreshold)
	}
	if got := time.Duration(c.defaultNumber(t, "slo_period_days")) * 24 * time.Hour; got != o.Period {
		t.Errorf("slo_period_days = %s, the harness's = %s", got, o.Period)
	}
	var rows []faults.BurnRateAlert
	for it := literal(t, attr(t, c.variables["burn_rate_alerts"], "default")).ElementIterator(); it.Next(); {
		_, r := it.Element()
		minutes := func(name string) time.Duration {
			f, _ := r.GetAttr(name).AsBigFloat().Float64()
			return time.Duration(f * float64(time.Minute))
		}
		rate, _ := r.GetAttr("burn_rate").AsBigFloat().Float64()
		rows = append(rows, faults.BurnRateAlert{Severity: r.GetAttr("severity").AsString(), Long: minutes("long_window_minutes"), Short: minutes("short_window_minutes"), Rate: rate})
	}
	if !slices.Equal(rows, o.Alerts) {
		t.Errorf("burn_rate_alerts = %+v, the harness's = %+v", rows, o.Alerts)
	}
}
