# What the service promises its users, and who is told when it breaks the promise:
#
#   the load balancer's request metrics -> an availability and a latency objective (SLO)
#     for the whole service, and one of each per region
#   -> burn-rate alerts: two pages and a ticket per objective (the SRE workbook's
#      multiwindow alerts, var.burn_rate_alerts) -> e-mail to var.notification_emails
#
#   uptime checks of https://DOMAIN/ and /health/ from three continents
#   -> an alert when two or more places fail
#
#   one dashboard: where (which region), what (which revision), since when.
#
# Measured at the load balancer because that is where users meet the service: it
# counts what Cloud Run never sees (no region left to send to, a region that cannot be
# reached) and labels each request with the region that answered it (backend_scope).
# The release analysis's alert policies in release.tf watch each new revision during a
# canary; these watch the service for its users, and the analysis does not read them.
#
# All of it exists only with the load balancer: the objectives are measured on it, the
# uptime checks reach the service through it, and without it nothing serves var.domain.

locals {
  # The requests the HTTPS URL map sent to the service's backend service: not port
  # 80's, whose URL map only redirects, and not those of any other backend service on
  # the URL map (synthetic probes of a canary revision, say), which are not users'.
  # join() of the one instance's name, or "" while there is no load balancer (then
  # nothing reads it).
  lb_requests = join(" AND ", [
    "resource.type = \"https_lb_rule\"",
    "resource.label.url_map_name = \"${join("", google_compute_url_map.https[*].name)}\"",
    "resource.label.backend_target_name = \"${join("", google_compute_backend_service.hello[*].name)}\"",
  ])

  scopes = concat(["all"], var.regions)

  # What each objective counts: "all" for the whole service, then each region's
  # requests, by the region of the serverless NEG that answered them. Requests no
  # region answered (every region out) carry no region's backend_scope: only "all"
  # counts them.
  slo_requests = { for scope in local.scopes : scope => (
    scope == "all" ? local.lb_requests : "${local.lb_requests} AND resource.label.backend_scope = \"${scope}\""
  ) if var.load_balancer }

  # Availability: a request counts against it when the load balancer answered it 5xx,
  # whether the service, a region that failed, or the load balancer itself gave the
  # 5xx. 4xx are not counted at all: Cloud Armor's 429s to clients over the rate
  # limit, and clients' own mistakes, say nothing of the service's health. Port 80's
  # redirects are not counted either (another URL map). The uptime checks' requests
  # are counted like any other: they go through the same load balancer. Serverless
  # NEGs have no load-balancer health checks to count. Class 0 (no answer sent,
  # mostly clients that went away) counts as good, as in Google's own example.
  lb_request_count = "metric.type = \"loadbalancing.googleapis.com/https/request_count\""
  slo_bad          = "metric.label.response_code_class = \"500\""
  slo_counted      = "metric.label.response_code_class != \"400\""

  # Latency: the load balancer's backend latency, from sending the request to the
  # region to the last byte of its answer. Not total_latencies, which adds the
  # client's own round trips: a slow phone network would spend the budget.
  lb_backend_latencies = "metric.type = \"loadbalancing.googleapis.com/https/backend_latencies\""

  scope_names = { for scope in local.scopes : scope => scope == "all" ? "all regions" : scope }

  # Every objective by name ("availability-all", "latency-europe-west1", ...).
  slos = merge(
    { for scope, slo in google_monitoring_slo.availability : "availability-${scope}" => { kind = "availability", scope = scope, id = slo.id, goal = var.slo_availability_goal } },
    { for scope, slo in google_monitoring_slo.latency : "latency-${scope}" => { kind = "latency", scope = scope, id = slo.id, goal = var.slo_latency_goal } },
  )

  # Each window's length as people say it: "1 h", "5 min", "3 d".
  window_names = { for m in distinct(flatten([for a in var.burn_rate_alerts : [a.long_window_minutes, a.short_window_minutes]])) :
    m => m % 1440 == 0 ? "${m / 1440} d" : m % 60 == 0 ? "${m / 60} h" : "${m} min"
  }

  # One alert policy per objective and row of var.burn_rate_alerts, named by the
  # objective and the long window: "availability-all-60m". The regions' objectives
  # alert only with var.regional_burn_rate_alerts: a region that fails while the load
  # balancer's retries and failover keep every user served spends that region's
  # budget, not users' patience, and a page then would be for a fault nobody saw.
  burn_rate_policies = merge([for name, slo in local.slos : {
    for a in var.burn_rate_alerts : "${name}-${a.long_window_minutes}m" => merge(slo, a, {
      long  = local.window_names[a.long_window_minutes]
      short = local.window_names[a.short_window_minutes]
      # The share of the period's budget the long window spends at this rate, and
      # how long the whole budget lasts at it.
      spent    = format("%.1f", 100 * a.burn_rate * a.long_window_minutes / (var.slo_period_days * 1440))
      runs_out = format("%.0f", var.slo_period_days * 24 / a.burn_rate)
    })
  } if slo.scope == "all" || var.regional_burn_rate_alerts]...)

  # The Cloud Deploy target that rolls a region back: its own for the canary region,
  # the multi-target for the others (RELEASES.md, "Watching, stopping and rolling back").
  rollback_target = { for r in var.regions : r => r == var.canary_region ? google_clouddeploy_target.region[r].name : google_clouddeploy_target.others.name }

  notification_channels = [for c in google_monitoring_notification_channel.email : c.name]

  dashboard_name = "${local.service}: users' view"
  runbook_footer = "docs/operations.md, \"What pages you, and why\", has the rest."
  dashboard_url  = one([for d in google_monitoring_dashboard.hello : "https://console.cloud.google.com/monitoring/dashboards/builder/${regex("[^/]+$", d.id)}?project=${var.project}"])
}

# The service the objectives belong to. Its preconditions check what the variables'
# own validations cannot: combinations of them.
resource "google_monitoring_custom_service" "hello" {
  count        = local.lb
  service_id   = local.service
  display_name = "${local.service} at https://${var.domain}"

  lifecycle {
    precondition {
      condition     = alltrue([for a in var.burn_rate_alerts : a.long_window_minutes <= var.slo_period_days * 1440])
      error_message = "Every long_window_minutes of burn_rate_alerts must fit in slo_period_days (${var.slo_period_days} days = ${var.slo_period_days * 1440} minutes): a burn rate is measured against the budget of that period."
    }
    # The error ratio is at most 1, so the burn rate is at most 1 / (1 - goal): a row
    # above that could never fire.
    precondition {
      condition     = alltrue([for a in var.burn_rate_alerts : a.burn_rate * (1 - var.slo_availability_goal) < 1])
      error_message = "A burn_rate of burn_rate_alerts is 1 / (1 - slo_availability_goal) = ${format("%.1f", 1 / (1 - var.slo_availability_goal))} or more: even every request failing would not reach it, so that alert could never fire. Lower the rate or raise the goal."
    }
    precondition {
      condition     = alltrue([for a in var.burn_rate_alerts : a.burn_rate * (1 - var.slo_latency_goal) < 1])
      error_message = "A burn_rate of burn_rate_alerts is 1 / (1 - slo_latency_goal) = ${format("%.1f", 1 / (1 - var.slo_latency_goal))} or more: even every request being slow would not reach it, so that alert could never fire. Lower the rate or raise the goal."
    }
  }
}

resource "google_monitoring_slo" "availability" {
  for_each = local.slo_requests

  service             = google_monitoring_custom_service.hello[0].service_id
  slo_id              = "availability-${each.key}"
  display_name        = "${local.service} availability, ${local.scope_names[each.key]}: ${var.slo_availability_goal * 100} % of requests not answered 5xx"
  goal                = var.slo_availability_goal
  rolling_period_days = var.slo_period_days

  request_based_sli {
    good_total_ratio {
      bad_service_filter   = "${local.lb_request_count} AND ${each.value} AND ${local.slo_bad}"
      total_service_filter = "${local.lb_request_count} AND ${each.value} AND ${local.slo_counted}"
    }
  }
}

resource "google_monitoring_slo" "latency" {
  for_each = local.slo_requests

  service             = google_monitoring_custom_service.hello[0].service_id
  slo_id              = "latency-${each.key}"
  display_name        = "${local.service} latency, ${local.scope_names[each.key]}: ${var.slo_latency_goal * 100} % of requests within ${var.slo_latency_threshold_ms} ms"
  goal                = var.slo_latency_goal
  rolling_period_days = var.slo_period_days

  request_based_sli {
    distribution_cut {
      distribution_filter = "${local.lb_backend_latencies} AND ${each.value}"
      range {
        max = var.slo_latency_threshold_ms
      }
    }
  }
}

resource "google_monitoring_notification_channel" "email" {
  for_each = var.load_balancer ? toset(var.notification_emails) : toset([])

  display_name = "${local.service} alerts to ${each.key}"
  type         = "email"
  labels = {
    email_address = each.key
  }
}

# Warns on every plan, without failing it, while the alerts below reach nobody.
check "someone_is_told" {
  assert {
    condition     = !var.load_balancer || length(var.notification_emails) > 0
    error_message = "notification_emails is empty: the burn-rate and uptime alerts will open incidents in Cloud Monitoring and tell nobody. Set notification_emails = [\"oncall@example.com\"] (docs/operations.md, \"What pages you, and why\")."
  }
}

# A page (or a ticket) when an objective's error budget burns too fast: over the long
# window, so that a blip does not page, and still over the short one, so that the
# alert closes soon after the problem stops (the SRE workbook, chapter 5).
resource "google_monitoring_alert_policy" "burn_rate" {
  for_each = local.burn_rate_policies

  display_name          = "${local.service} ${each.value.kind}, ${local.scope_names[each.value.scope]}: error budget burning ${each.value.burn_rate}x over ${each.value.long} (${each.value.severity})"
  combiner              = "AND"
  severity              = each.value.severity == "page" ? "CRITICAL" : "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "burn rate over the last ${each.value.long} above ${each.value.burn_rate}"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${each.value.id}\", \"${each.value.long_window_minutes * 60}s\")"
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.burn_rate
      duration        = "0s"
    }
  }

  conditions {
    display_name = "burn rate over the last ${each.value.short} above ${each.value.burn_rate}"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${each.value.id}\", \"${each.value.short_window_minutes * 60}s\")"
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.burn_rate
      duration        = "0s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${local.service} ${each.value.kind} in ${local.scope_names[each.value.scope]}: budget burning ${each.value.burn_rate}x (${each.value.severity})"
    content   = <<-EOT
      **What it means.** The ${each.value.kind} objective of ${local.service} in ${local.scope_names[each.value.scope]} (${each.value.goal * 100} % of requests ${each.value.kind == "availability" ? "not answered 5xx" : "answered within ${var.slo_latency_threshold_ms} ms"}, over ${var.slo_period_days} days) is spending its error budget ${each.value.burn_rate} times as fast as it can afford, over the last ${each.value.long} and still over the last ${each.value.short}. That window alone spent ${each.value.spent} % of the budget; at this rate all of it is gone in ${each.value.runs_out} hours. ${each.value.severity == "page" ? "Users are affected now: act now." : "Nothing is on fire: fix it within working hours."}

      **What to do first.**
      1. Open the dashboard "${local.dashboard_name}" (link below). ${each.value.kind == "availability" ? "\"5xx share of requests, per region\" says which region; \"Cloud Run 5xx/s, per region and revision\" says which revision and since when." : "\"p99 backend latency, per region\" says which region; \"Cloud Run instances, per region\" shows a region at its maximum, where requests queue."}
      2. If a revision released around then started it, roll the region back: `gcloud deploy targets rollback ${each.value.scope == "all" ? "TARGET" : local.rollback_target[each.value.scope]} --delivery-pipeline=${google_clouddeploy_delivery_pipeline.hello.name} --region=${var.delivery_region}`${each.value.scope == "all" ? " (TARGET: ${google_clouddeploy_target.region[var.canary_region].name} for the canary region, ${google_clouddeploy_target.others.name} for the others)" : ""}.
      3. Otherwise look at what runs there and what users get: `gcloud run revisions list --service=${local.service} --region=${each.value.scope == "all" ? "REGION" : each.value.scope} --project=${var.project}`, and `make probe URL=https://${var.domain}/ PROBE_FLAGS="-n 500"`.

      ${local.runbook_footer}
    EOT

    links {
      display_name = local.dashboard_name
      url          = local.dashboard_url
    }
  }
}

# What users get, asked from outside Google's network: the greeting and the health
# check, through the load balancer, its certificate and DNS.
locals {
  uptime_timeout_seconds = 10
  uptime_checks = var.load_balancer ? {
    root   = { path = "/", content = "Hello world!" }
    health = { path = "/health/", content = "\"status\":\"ok\"" }
  } : {}
}

resource "google_monitoring_uptime_check_config" "hello" {
  for_each = local.uptime_checks

  display_name     = "${local.service} https://${var.domain}${each.value.path}"
  timeout          = "${local.uptime_timeout_seconds}s"
  period           = "${var.uptime_check_period_seconds}s"
  selected_regions = var.uptime_check_regions

  http_check {
    path           = each.value.path
    port           = 443
    use_ssl        = true
    validate_ssl   = true
    request_method = "GET"
    accepted_response_status_codes {
      status_value = 200
    }
  }

  # Cloud Monitoring uses only the first matcher.
  content_matchers {
    content = each.value.content
    matcher = "CONTAINS_STRING"
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      host       = var.domain
      project_id = var.project
    }
  }
}

# Pages when two or more checker locations fail the same check: one location failing
# is as likely the checker's own network as ours. The pattern is Google's
# (terraform-google-modules' simple-uptime-check): the latest result of each location
# within 1200 s (longer than the longest check period, 900 s), the failing ones
# counted.
resource "google_monitoring_alert_policy" "uptime" {
  for_each = local.uptime_checks

  display_name          = "${local.service}: https://${var.domain}${each.value.path} fails from two or more places"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.notification_channels

  conditions {
    display_name = "uptime check of ${each.value.path} failing in two or more locations"
    condition_threshold {
      filter          = "metric.type = \"monitoring.googleapis.com/uptime_check/check_passed\" AND metric.label.check_id = \"${google_monitoring_uptime_check_config.hello[each.key].uptime_check_id}\" AND resource.type = \"uptime_url\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "60s"

      aggregations {
        alignment_period     = "1200s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.*"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${local.service}: https://${var.domain}${each.value.path} fails from two or more places"
    content   = <<-EOT
      **What it means.** From two or more of ${join(", ", var.uptime_check_regions)}, GET https://${var.domain}${each.value.path} did not answer 200 with `${each.value.content}` in its body within ${local.uptime_timeout_seconds} s. Users there are very likely failing too.

      **What to do first.**
      1. The dashboard "${local.dashboard_name}" (link below), "Uptime checks passing, per check and checker location": which places, since when. If every region's requests fall at once, look at the edge (DNS, certificate, load balancer), not a region.
      2. Ask yourself: `curl -sS -i https://${var.domain}${each.value.path}` and `make probe URL=https://${var.domain}/`. A certificate error: `gcloud compute ssl-certificates describe ${one(google_compute_managed_ssl_certificate.hello[*].name)} --global --project=${var.project}`. No answer at all: the domain's A record must be the load_balancer_ip output.
      3. A 5xx: the burn-rate alerts' steps (which region, which revision, roll back).

      ${local.runbook_footer}
    EOT

    links {
      display_name = local.dashboard_name
      url          = local.dashboard_url
    }
  }
}

# The dashboard. Every chart is one line per region or per revision, so that during an
# incident the legend says where, and the time axis since when.
locals {
  by_region_rate = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.backend_scope"] }
  by_revision    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.location", "resource.label.revision_name"] }
  cloud_run      = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"${local.service}\""

  # The budget left of each objective for the whole service: 1 is untouched, 0 spent.
  dashboard_budgets = concat(
    [for scope, slo in google_monitoring_slo.availability : {
      title = "Error budget left: availability, all regions (${var.slo_availability_goal * 100} % not 5xx over ${var.slo_period_days} days)"
      slo   = slo.id
    } if scope == "all"],
    [for scope, slo in google_monitoring_slo.latency : {
      title = "Error budget left: latency, all regions (${var.slo_latency_goal * 100} % within ${var.slo_latency_threshold_ms} ms over ${var.slo_period_days} days)"
      slo   = slo.id
    } if scope == "all"],
  )

  dashboard_charts = concat([
    {
      title = "Requests/s at the load balancer, per region"
      query = { timeSeriesFilter = { filter = "${local.lb_request_count} AND ${local.lb_requests}", aggregation = local.by_region_rate } }
    },
    {
      title = "5xx share of requests, per region (4xx not counted, as in the SLO)"
      query = { timeSeriesFilterRatio = {
        numerator   = { filter = "${local.lb_request_count} AND ${local.lb_requests} AND ${local.slo_bad}", aggregation = local.by_region_rate }
        denominator = { filter = "${local.lb_request_count} AND ${local.lb_requests} AND ${local.slo_counted}", aggregation = local.by_region_rate }
      } }
    },
    {
      title = "p50 backend latency, per region (ms)"
      query = { timeSeriesFilter = { filter = "${local.lb_backend_latencies} AND ${local.lb_requests}", aggregation = merge(local.by_region_rate, { perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_50" }) } }
    },
    {
      title      = "p99 backend latency, per region (ms; the line: the latency SLO's threshold)"
      thresholds = [{ value = var.slo_latency_threshold_ms, label = "latency SLO: ${var.slo_latency_threshold_ms} ms" }]
      query      = { timeSeriesFilter = { filter = "${local.lb_backend_latencies} AND ${local.lb_requests}", aggregation = merge(local.by_region_rate, { perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_99" }) } }
    },
    {
      title = "Cloud Run requests/s, per region and revision"
      query = { timeSeriesFilter = { filter = "${local.cloud_run} AND metric.type = \"run.googleapis.com/request_count\"", aggregation = local.by_revision } }
    },
    {
      title = "Cloud Run 5xx/s, per region and revision"
      query = { timeSeriesFilter = { filter = "${local.cloud_run} AND metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\"", aggregation = local.by_revision } }
    },
    {
      title = "Cloud Run instances, per region"
      query = { timeSeriesFilter = { filter = "${local.cloud_run} AND metric.type = \"run.googleapis.com/container/instance_count\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.location"] } } }
    },
    ],
    # Only with Cloud Armor (var.cloud_armor).
    [for policy in google_compute_security_policy.edge : {
      title = "Requests Cloud Armor denied (429: over the rate limit, or banned), per second"
      query = { timeSeriesFilter = { filter = "metric.type = \"networksecurity.googleapis.com/https/request_count\" AND resource.type = \"network_security_policy\" AND resource.label.policy_name = \"${policy.name}\" AND metric.label.blocked = \"true\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM" } } }
    }],
    [{
      title = "Uptime checks passing, per check and checker location (1: every check passed)"
      query = { timeSeriesFilter = { filter = "metric.type = \"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type = \"uptime_url\" AND resource.label.host = \"${var.domain}\"", aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_FRACTION_TRUE", crossSeriesReducer = "REDUCE_MEAN", groupByFields = ["metric.label.check_id", "metric.label.checker_location"] } } }
    }],
  )

  # The budgets in a row at the top, then the charts two by two, on Cloud Monitoring's
  # 48-column grid.
  dashboard_tiles = concat(
    [for i, b in local.dashboard_budgets : {
      xPos = i * 24, yPos = 0, width = 24, height = 8
      widget = { title = b.title, scorecard = {
        timeSeriesQuery = { timeSeriesFilter = { filter = "select_slo_budget_fraction(\"${b.slo}\")", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_NEXT_OLDER" } } }
        gaugeView       = { lowerBound = 0, upperBound = 1 }
      } }
    }],
    [for i, c in local.dashboard_charts : {
      xPos = (i % 2) * 24, yPos = 8 + floor(i / 2) * 16, width = 24, height = 16
      widget = { title = c.title, xyChart = {
        dataSets   = [{ plotType = "LINE", timeSeriesQuery = c.query }]
        thresholds = try(c.thresholds, [])
      } }
    }],
  )
}

resource "google_monitoring_dashboard" "hello" {
  count = local.lb
  dashboard_json = jsonencode({
    displayName  = local.dashboard_name
    mosaicLayout = { columns = 48, tiles = local.dashboard_tiles }
  })
}
