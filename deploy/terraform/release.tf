# Releases, with Google Cloud Deploy. Every release goes through one delivery
# pipeline:
#
#   stage 1: the canary region          stage 2: every other region at once (a multi-target)
#   canary_percentages, then 100 %  ->  bake_minutes  ->  canary_percentages, then 100 %
#   an analysis after each step                        an analysis after each step
#
# An automation advances each step whose analysis passed, promotes the release to the
# other regions after the bake, and rolls a failed rollout back to the last release
# that succeeded on its target. `make release` (and CI) creates the releases from
# deploy/service.yaml; RELEASES.md explains the policy and what a person can do.
#
# Who owns what: Cloud Deploy creates and replaces the Cloud Run services, from
# deploy/service.yaml, on every release; Terraform declares no Cloud Run service, so
# neither can undo the other. Terraform owns everything around the services: the
# accounts, the targets with the values the spec takes from them, the pipeline, the
# automations, the alert policies, the load balancer.

locals {
  spec    = yamldecode(file("${path.module}/../service.yaml"))
  service = local.spec.metadata.name
  # The regions a release reaches after the canary, in var.regions' order.
  others = [for r in var.regions : r if r != var.canary_region]

  # The values deploy/service.yaml marks "from-param" that are the same in every
  # region; each region's target adds its own region.
  deploy_parameters = {
    min_instances           = tostring(var.min_instances)
    max_instances           = tostring(var.max_instances)
    runtime_service_account = google_service_account.runtime.email
    project_id              = var.project
  }

  # The two stages, in promotion order, with the regions whose alert policies each
  # one's analysis reads, and the regions whose new revision its synthetic traffic
  # asks. The second reads the canary region's alerts too: the bake itself is not
  # analysed (a promotion only waits), so an alert there after its last step still
  # stops the release before it goes further.
  stages = [
    { target = google_clouddeploy_target.region[var.canary_region].name, regions = [var.canary_region], probed = [var.canary_region] },
    { target = google_clouddeploy_target.others.name, regions = concat(local.others, [var.canary_region]), probed = local.others },
  ]

  # Synthetic traffic. A quiet service sends its new revision no request during a
  # canary step, and alert policies that see no data open no alert, so an analysis of
  # alert policies alone would pass a revision that answers nothing but 500s. While
  # an analysis runs, its custom check runs the project's probe (cmd/probe, var.
  # probe_image) in Cloud Deploy's execution environment: it sends requests through the
  # load balancer's canary route to the new revision in each region of the stage,
  # var.synthetic_requests_per_second to each, so that the alert policies see them,
  # and fails the analysis itself when more than alert_error_ratio of them fail, a
  # region's p99 passes alert_latency_ms, or a region does not answer: an analysis
  # that could not send its requests fails rather than passing on nothing. The check
  # runs every 5 minutes, Cloud Deploy's minimum and default, and each run sends for 4,
  # so that runs never overlap. RELEASES.md gives the figures and what it costs.
  synthetic               = var.load_balancer && var.synthetic_requests_per_second > 0
  synthetic_every_seconds = 300
  synthetic_run_seconds   = 240
  # Cloud Deploy tags the new revision with this while a canary is in progress; the
  # load balancer's canary route (main.tf) takes requests naming a region in this
  # header there.
  canary_tag    = "canary"
  canary_header = "X-Hello-Canary"

  # gcloud names a release's first rollout RELEASE-to-TARGET-0001 (the Cloud SDK's
  # command_lib/deploy/rollout_util.py), and a rollout's name, like a release's, is
  # at most 63 characters. Every target a release's rollouts may go to leaves this
  # much for the release's name; make release reads it (output release_name_max_length).
  target_ids              = concat([for t in google_clouddeploy_target.region : t.name], [google_clouddeploy_target.others.name])
  release_name_max_length = 63 - length("-to-") - length("-0001") - max([for t in local.target_ids : length(t)]...)
  # What scripts/release.sh assumes when it cannot read the output.
  release_name_min_length = 24
}

# The identity Cloud Deploy's render and deploy jobs run as.
resource "google_service_account" "deployer" {
  account_id   = "${local.service}-deployer"
  display_name = "${local.service} Cloud Deploy jobs (render, deploy)"
}

# What the deployer needs, and why:
resource "google_project_iam_member" "deployer" {
  for_each = toset([
    # Cloud Deploy's own job permissions: its configuration, logs, and the objects of
    # its render and release storage.
    "roles/clouddeploy.jobRunner",
    # Creating and replacing the Cloud Run services and their revisions. Not the
    # narrower run.developer: the manifest turns the invoker IAM check off, which
    # takes run.services.setIamPolicy (Cloud Run's "Allowing public access" page).
    # On the whole project: Cloud Run's roles can be granted on a service only once
    # it exists (Cloud Deploy creates them), and IAM conditions on resource names do
    # not cover Cloud Run (RELEASES.md, "The roles").
    "roles/run.admin",
  ])
  project    = var.project
  role       = each.key
  member     = "serviceAccount:${google_service_account.deployer.email}"
  depends_on = [google_project_service.resource_manager]
}

# The identity the analysis jobs run as, and with it the synthetic traffic's
# container: it reads alerts and nothing else, so that the container it runs cannot
# deploy anything.
resource "google_service_account" "analysis" {
  account_id   = "${local.service}-analysis"
  display_name = "${local.service} Cloud Deploy analysis (alerts, synthetic traffic)"
}

resource "google_project_iam_member" "analysis" {
  for_each = toset([
    "roles/clouddeploy.jobRunner",
    # The analysis reads the alert policies and their open alerts. Google's analysis
    # page names the first, its analysis quickstart the second; both are read-only.
    "roles/monitoring.alertPolicyViewer",
    "roles/monitoring.alertViewer",
    # Both pages list it for the analysis's calls to the Monitoring API.
    "roles/serviceusage.serviceUsageConsumer",
  ])
  project    = var.project
  role       = each.key
  member     = "serviceAccount:${google_service_account.analysis.email}"
  depends_on = [google_project_service.resource_manager]
}

# The custom check's container (the probe's image) is pulled from the registry.
resource "google_artifact_registry_repository_iam_member" "analysis_pulls_probe" {
  count      = local.synthetic ? 1 : 0
  location   = google_artifact_registry_repository.containers.location
  repository = google_artifact_registry_repository.containers.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.analysis.email}"
}

# Deploying a service that runs as the runtime account means acting as it.
resource "google_service_account_iam_member" "deployer_runs_as_runtime" {
  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.deployer.email}"
}

# The identity the automations act as: advancing, promoting, rolling back.
resource "google_service_account" "automation" {
  account_id   = "${local.service}-automation"
  display_name = "${local.service} Cloud Deploy automation (advance, promote, roll back)"
}

# Advancing and creating rollouts, and rolling back. The narrower releaser role
# lacks the rollback rule's retry and ignore permissions.
resource "google_project_iam_member" "automation" {
  project    = var.project
  role       = "roles/clouddeploy.operator"
  member     = "serviceAccount:${google_service_account.automation.email}"
  depends_on = [google_project_service.resource_manager]
}

# The rollouts the automation creates run as the deployer and the analysis account.
resource "google_service_account_iam_member" "automation_acts_as_executor" {
  for_each           = { deployer = google_service_account.deployer.name, analysis = google_service_account.analysis.name }
  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.automation.email}"
}

# CI's identity creates releases in this pipeline, and nothing else here: the
# releaser role on the pipeline alone, acting as the accounts its jobs run as, and
# writing the release's source into the staging bucket below. The deployer may deploy
# what the manifest a release carries asks, so CI's releases are as trusted as CI
# (RELEASES.md, "The roles").
resource "google_clouddeploy_delivery_pipeline_iam_member" "ci_releaser" {
  count    = var.ci_service_account == "" ? 0 : 1
  project  = var.project
  location = var.delivery_region
  name     = google_clouddeploy_delivery_pipeline.hello.name
  role     = "roles/clouddeploy.releaser"
  member   = "serviceAccount:${var.ci_service_account}"
}

resource "google_service_account_iam_member" "ci_acts_as_executor" {
  for_each           = var.ci_service_account == "" ? {} : { deployer = google_service_account.deployer.name, analysis = google_service_account.analysis.name }
  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${var.ci_service_account}"
}

# gcloud reads the staging bucket (storage.buckets.get) before it uploads into it
# (storage.objects.create): a bucket reader and an object creator, on this bucket only.
resource "google_storage_bucket_iam_member" "ci_stages_releases" {
  for_each = var.ci_service_account == "" ? toset([]) : toset(["roles/storage.legacyBucketReader", "roles/storage.objectCreator"])
  bucket   = google_storage_bucket.releases.name
  role     = each.key
  member   = "serviceAccount:${var.ci_service_account}"
}

# Where `gcloud deploy releases create` uploads each release's source (the
# manifest). Cloud Deploy keeps what it rendered itself, so a source is needed only
# until its release is rendered; 90 days is generous.
resource "google_storage_bucket" "releases" {
  name                        = "${var.project}-${local.service}-releases"
  location                    = var.delivery_region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }
}

# One target per region: the Cloud Run service there, deployed by the deployer with
# the values deploy/service.yaml takes as parameters.
resource "google_clouddeploy_target" "region" {
  for_each = local.regions

  name              = "${local.service}-${each.key}"
  location          = var.delivery_region
  description       = "${local.service} on Cloud Run in ${each.key}"
  deploy_parameters = merge(local.deploy_parameters, { region = each.key })

  run {
    location = "projects/${var.project}/locations/${each.key}"
  }

  execution_configs {
    usages          = ["RENDER", "DEPLOY"]
    service_account = google_service_account.deployer.email
  }
  execution_configs {
    usages          = ["ANALYSIS"]
    service_account = google_service_account.analysis.email
  }
}

# Every region but the canary, deployed in parallel.
resource "google_clouddeploy_target" "others" {
  name        = "${local.service}-others"
  location    = var.delivery_region
  description = "${local.service} in every region but the canary, at once"

  multi_target {
    target_ids = [for r in local.others : google_clouddeploy_target.region[r].name]
  }

  execution_configs {
    usages          = ["RENDER", "DEPLOY"]
    service_account = google_service_account.deployer.email
  }
  execution_configs {
    usages          = ["ANALYSIS"]
    service_account = google_service_account.analysis.email
  }

  # Checks of the variables together, here once rather than once per region.
  lifecycle {
    precondition {
      condition     = contains(var.regions, var.canary_region)
      error_message = "canary_region ${var.canary_region} is not one of regions (${join(", ", var.regions)}): the canary must be a region the service runs in."
    }
    # Service health needs an instance in the region to probe.
    precondition {
      condition     = !var.failover || var.min_instances >= 1
      error_message = "failover = true needs min_instances >= 1: Cloud Run service health computes a region's health from its running instances. Set min_instances = 1 (billed while idle), or failover = false."
    }
    precondition {
      condition     = var.max_instances >= var.min_instances
      error_message = "max_instances (${var.max_instances}) is below min_instances (${var.min_instances})."
    }
    # The synthetic traffic (local.synthetic): the probe's image, by digest, from this
    # project's registry, the one the analysis account may pull from.
    precondition {
      condition     = !local.synthetic || try(regex("^(.+)/[a-z0-9._-]+(:[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}$", var.probe_image)[0] == local.registry_url, false)
      error_message = "probe_image = \"${var.probe_image}\": the synthetic traffic (synthetic_requests_per_second > 0, with the load balancer) runs the probe's image, by digest, from ${local.registry_url} (the only registry the analysis account may pull from): ${local.registry_url}/probe@sha256:DIGEST, the last line of make publish-probe with KO_DOCKER_REPO=${local.registry_url}. Or set synthetic_requests_per_second = 0 (RELEASES.md says what a quiet service then risks)."
    }
    precondition {
      condition     = !local.synthetic || var.synthetic_requests_per_second * var.alert_window_seconds >= 20
      error_message = "synthetic_requests_per_second x alert_window_seconds = ${var.synthetic_requests_per_second * var.alert_window_seconds}: each alert window must see at least 20 synthetic requests to a region's new revision, so that one answer in 20 moves its error share by 5 %."
    }
    # The probe sends from one address: under Cloud Armor's per-client rate limit, or
    # its 429s would fail a good release's step.
    precondition {
      condition     = !local.synthetic || !var.cloud_armor || var.synthetic_requests_per_second * max(1, length(local.others)) * var.rate_limit_interval_seconds < var.rate_limit_requests
      error_message = "synthetic_requests_per_second x ${max(1, length(local.others))} regions x rate_limit_interval_seconds = ${var.synthetic_requests_per_second * max(1, length(local.others)) * var.rate_limit_interval_seconds} requests from the probe's one address, not under Cloud Armor's rate_limit_requests (${var.rate_limit_requests}): its 429s would fail a good release. Lower the one or raise the other."
    }
    precondition {
      condition     = !local.synthetic || var.analysis_minutes * 60 >= 2 * local.synthetic_every_seconds
      error_message = "analysis_minutes = ${var.analysis_minutes} is shorter than two runs of the synthetic traffic's check (${2 * local.synthetic_every_seconds / 60} minutes): Google does not say whether the first run starts with the analysis or a period later, and an analysis must see some."
    }
  }
}

resource "google_clouddeploy_delivery_pipeline" "hello" {
  name        = local.service
  location    = var.delivery_region
  description = "${local.service}: ${var.canary_region} first, then ${join(", ", local.others)} at once"

  lifecycle {
    precondition {
      condition     = local.release_name_max_length >= local.release_name_min_length
      error_message = "The longest Cloud Deploy target name (${max([for t in local.target_ids : length(t)]...)} characters, from the service's name and the longest region's) leaves ${local.release_name_max_length} characters for a release's name, fewer than ${local.release_name_min_length}: gcloud names a release's first rollout RELEASE-to-TARGET-0001, at most 63 characters. Shorten the service's name in deploy/service.yaml."
    }
  }

  serial_pipeline {
    dynamic "stages" {
      for_each = local.stages
      content {
        target_id = stages.value.target

        strategy {
          canary {
            # Cloud Deploy splits the region's traffic between the new revision and
            # the last one that succeeded, step by step, and tags the new one for the
            # canary route while it does.
            runtime_config {
              cloud_run {
                automatic_traffic_control = true
                canary_revision_tags      = local.synthetic ? [local.canary_tag] : []
              }
            }
            canary_deployment {
              percentages = var.canary_percentages
              # After each step: fails the rollout while an alert policy of the
              # stage's regions has an open alert.
              analysis {
                duration = "${var.analysis_minutes * 60}s"
                google_cloud {
                  alert_policy_checks {
                    id = "errors-and-latency"
                    alert_policies = flatten([for r in stages.value.regions : [
                      google_monitoring_alert_policy.errors[r].name,
                      google_monitoring_alert_policy.latency[r].name,
                    ]])
                  }
                }
                # The synthetic traffic (local.synthetic): the probe's arguments are
                # the release policy's thresholds.
                dynamic "custom_checks" {
                  for_each = local.synthetic ? [stages.value.probed] : []
                  content {
                    id        = "synthetic-traffic"
                    frequency = "${local.synthetic_every_seconds}s"
                    task {
                      container {
                        image = var.probe_image
                        args = [
                          "-url", "https://${var.domain}/",
                          "-route-header", local.canary_header,
                          "-expect-region", join(",", custom_checks.value),
                          "-rate", tostring(var.synthetic_requests_per_second * length(custom_checks.value)),
                          "-n", tostring(ceil(var.synthetic_requests_per_second * length(custom_checks.value) * local.synthetic_run_seconds)),
                          "-c", "8",
                          "-max-error-ratio", tostring(var.alert_error_ratio),
                          "-max-p99", "${var.alert_latency_ms}ms",
                        ]
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

# Promotion: once the release succeeded in the canary region, wait bake_minutes, then
# deliver it to the other regions.
resource "google_clouddeploy_automation" "promote" {
  name              = "${local.service}-promote"
  location          = var.delivery_region
  delivery_pipeline = google_clouddeploy_delivery_pipeline.hello.name
  service_account   = google_service_account.automation.email

  selector {
    targets {
      id = google_clouddeploy_target.region[var.canary_region].name
    }
  }

  rules {
    promote_release_rule {
      id                    = "promote-after-bake"
      wait                  = "${var.bake_minutes * 60}s"
      destination_target_id = "@next"
    }
  }
}

# In every stage: the next step once a step's analysis passed, and a rollback when
# a rollout fails (an analysis that saw an alert, or a deploy that failed).
resource "google_clouddeploy_automation" "advance_and_repair" {
  name              = "${local.service}-advance-and-repair"
  location          = var.delivery_region
  delivery_pipeline = google_clouddeploy_delivery_pipeline.hello.name
  service_account   = google_service_account.automation.email

  selector {
    targets {
      id = "*"
    }
  }

  rules {
    advance_rollout_rule {
      id = "advance"
    }
  }

  rules {
    repair_rollout_rule {
      id = "rollback"
      repair_phases {
        rollback {}
      }
    }
  }
}

# The two alert policies of each region that the analysis reads. Each groups by
# revision, so that the new revision's errors open an alert of their own however
# small its share of the region's traffic.
resource "google_monitoring_alert_policy" "errors" {
  for_each = local.regions

  display_name = "${local.service} in ${each.key}: a revision answers over ${var.alert_error_ratio * 100} % 5xx"
  combiner     = "OR"

  conditions {
    display_name = "share of a revision's requests answered 5xx"
    condition_threshold {
      filter             = "${local.request_count[each.key]} AND metric.label.response_code_class = \"5xx\""
      denominator_filter = local.request_count[each.key]
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alert_error_ratio
      duration           = "0s"
      # A revision that no longer gets traffic (one rolled back) sends no data:
      # its alert closes, rather than stay open and fail the next release.
      evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"

      aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.revision_name"]
      }
      denominator_aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.revision_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }
}

resource "google_monitoring_alert_policy" "latency" {
  for_each = local.regions

  display_name = "${local.service} in ${each.key}: a revision's p99 latency over ${var.alert_latency_ms} ms"
  combiner     = "OR"

  conditions {
    display_name = "99th percentile latency of a revision"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_latencies\" AND resource.label.service_name = \"${local.service}\" AND resource.label.location = \"${each.key}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_latency_ms
      duration        = "0s"
      # As for errors: a revision without traffic closes its alert.
      evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"

      aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_99"
        group_by_fields      = ["resource.label.revision_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }
}

locals {
  # Every request the service in a region answered, by Cloud Run's count.
  request_count = { for r in local.regions : r => "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND resource.label.service_name = \"${local.service}\" AND resource.label.location = \"${r}\"" }
}
