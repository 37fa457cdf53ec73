# The service in several regions behind one global HTTPS load balancer:
#
#   client -> global forwarding rule :443 -> HTTPS proxy -> URL map -> backend service
#          -> serverless NEG (one per region) -> Cloud Run service (one per region)
#
# and :80 -> HTTP proxy -> a URL map that only redirects to https.
#
# The Cloud Run services themselves are deployed by Cloud Deploy from
# deploy/service.yaml (release.tf says why Terraform does not declare them).
#
# Based on Google's run/multiple_regions sample, with these changes: one backend per
# region whatever their number (the sample hard-codes two), releases through Cloud
# Deploy instead of an image in Terraform, a runtime service account with no roles,
# the certificate for var.domain (the sample ignores its variable), port 80 on the
# same load-balancing scheme as 443, outlier detection, retries of safe requests at
# the load balancer, and no https redirect rule in the HTTPS URL map.

locals {
  regions = toset(var.regions)
  # With load_balancer = false (a new project's first apply), none of it exists.
  lb     = var.load_balancer ? 1 : 0
  lb_neg = var.load_balancer ? local.regions : toset([])
  # The canary routes exist with the release pipeline's synthetic traffic (release.tf).
  canary_neg = local.synthetic ? local.regions : toset([])
}

# The IAM resources below (google_project_iam_member) read and write the project's
# policy through the Cloud Resource Manager API, which a project's own service
# account (Terraform run from CI, say) finds disabled in a new project.
resource "google_project_service" "resource_manager" {
  project            = var.project
  service            = "cloudresourcemanager.googleapis.com"
  disable_on_destroy = false
}

# The identity the service runs as. It needs no role: the service calls no Google
# API except the metadata server, which needs none. Without it Cloud Run would use
# the Compute Engine default service account, which has Editor on the project.
resource "google_service_account" "runtime" {
  account_id   = "${local.service}-runtime"
  display_name = "${local.service} Cloud Run runtime (no roles)"
}

# One serverless NEG per region, pointing at the service Cloud Deploy runs there.
resource "google_compute_region_network_endpoint_group" "hello" {
  for_each = local.lb_neg

  name                  = "${local.service}-${each.key}"
  region                = each.key
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = local.service
  }
}

resource "google_compute_backend_service" "hello" {
  count                 = local.lb
  name                  = local.service
  load_balancing_scheme = "EXTERNAL_MANAGED"
  # Cloud Armor's rate limit (edge.tf), unless var.cloud_armor is false.
  security_policy = one(google_compute_security_policy.edge[*].id)

  # One log entry per request (a var.lb_log_sample_rate share of them), so that an
  # incident can be traced afterwards.
  log_config {
    enable      = var.lb_log_sample_rate > 0
    sample_rate = var.lb_log_sample_rate
  }

  dynamic "backend" {
    for_each = google_compute_region_network_endpoint_group.hello
    content {
      group = backend.value.id
    }
  }

  # Serverless NEGs take no health check. Outlier detection takes out of rotation a
  # region that passes its readiness probes but fails requests. At most half the
  # regions are ejected. Serverless NEGs refuse the success-rate fields; Google
  # recommends a long base ejection time for them (180 s in its own test).
  outlier_detection {
    consecutive_errors                    = 5
    enforcing_consecutive_errors          = 100
    consecutive_gateway_failure           = 3
    enforcing_consecutive_gateway_failure = 100
    max_ejection_percent                  = 50

    interval {
      seconds = 10
    }
    base_ejection_time {
      seconds = 180
    }
  }
}

# The canary routes: in each region, a serverless NEG on the revision that Cloud Deploy
# tags local.canary_tag while a canary is in progress (release.tf), behind a backend
# service of its own, so that a request the URL map sends there reaches that revision
# in that region and nowhere else. Outside a canary the tag does not exist and such a
# request fails. Only the release pipeline's synthetic traffic uses them, through the
# header local.canary_header; anyone may send it, and reaches a revision that serves
# real users' traffic at the time anyway, behind the same Cloud Armor policy.
resource "google_compute_region_network_endpoint_group" "canary" {
  for_each = local.canary_neg

  name                  = "${local.service}-canary-${each.key}"
  region                = each.key
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = local.service
    tag     = local.canary_tag
  }
}

resource "google_compute_backend_service" "canary" {
  for_each = local.canary_neg

  name                  = "${local.service}-canary-${each.key}"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  security_policy       = one(google_compute_security_policy.edge[*].id)

  log_config {
    enable      = var.lb_log_sample_rate > 0
    sample_rate = var.lb_log_sample_rate
  }

  backend {
    group = google_compute_region_network_endpoint_group.canary[each.key].id
  }
}

# Requests with a safe method (GET, HEAD, OPTIONS) are retried by the load balancer when
# a region fails them at the transport level or with a gateway error. Other methods
# reach the default service and have no retry policy, so a request that may change
# something is never sent twice by this rule. FAILOVER.md cites the documentation.
resource "google_compute_url_map" "https" {
  count           = local.lb
  name            = "${local.service}-https"
  default_service = google_compute_backend_service.hello[0].id

  host_rule {
    hosts        = ["*"]
    path_matcher = "hello"
  }

  path_matcher {
    name            = "hello"
    default_service = google_compute_backend_service.hello[0].id

    # First, the canary routes (above): a request naming a region in
    # local.canary_header goes to that region's canary revision, with no retry
    # elsewhere, since its answer must come from there.
    dynamic "route_rules" {
      for_each = { for i, r in tolist(local.canary_neg) : r => i }
      content {
        priority = route_rules.value + 1

        match_rules {
          prefix_match = "/"
          header_matches {
            header_name = local.canary_header
            exact_match = route_rules.key
          }
        }

        service = google_compute_backend_service.canary[route_rules.key].id
      }
    }

    dynamic "route_rules" {
      for_each = var.lb_retries > 0 ? ["safe methods"] : []
      content {
        priority = 1000

        match_rules {
          prefix_match = "/"
          header_matches {
            header_name = ":method"
            regex_match = "^(GET|HEAD|OPTIONS)$"
          }
        }

        route_action {
          weighted_backend_services {
            backend_service = google_compute_backend_service.hello[0].id
            weight          = 100
          }

          # Not 5xx: a 500 is the service's own answer, and sending it to another
          # region would double the load of a bug and hide it. The per-try timeout
          # must be set: unset, it is the backend service's timeout, which serverless
          # NEGs fix at 60 minutes, so a hung region would hold each request that long.
          retry_policy {
            num_retries      = var.lb_retries
            retry_conditions = ["connect-failure", "refused-stream", "gateway-error"]
            per_try_timeout {
              seconds = var.lb_per_try_timeout_seconds
            }
          }
        }
      }
    }
  }
}

resource "google_compute_managed_ssl_certificate" "hello" {
  count = local.lb
  name  = "${local.service}-cert"

  managed {
    domains = [var.domain]
  }
}

resource "google_compute_target_https_proxy" "hello" {
  count            = local.lb
  name             = "${local.service}-https"
  url_map          = google_compute_url_map.https[0].id
  ssl_certificates = [google_compute_managed_ssl_certificate.hello[0].id]
  # Modern TLS only (edge.tf).
  ssl_policy = google_compute_ssl_policy.hello[0].id
}

resource "google_compute_global_address" "hello" {
  count = local.lb
  name  = "${local.service}-ip"
}

resource "google_compute_global_forwarding_rule" "https" {
  count                 = local.lb
  name                  = "${local.service}-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.hello[0].id
  port_range            = "443"
  target                = google_compute_target_https_proxy.hello[0].id
}

# Port 80 answers every request with a redirect to the same URL on https, so that
# plain-http requests never reach the service.
resource "google_compute_url_map" "http_redirect" {
  count = local.lb
  name  = "${local.service}-http-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "http_redirect" {
  count   = local.lb
  name    = "${local.service}-http-redirect"
  url_map = google_compute_url_map.http_redirect[0].id
}

resource "google_compute_global_forwarding_rule" "http" {
  count                 = local.lb
  name                  = "${local.service}-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.hello[0].id
  port_range            = "80"
  target                = google_compute_target_http_proxy.http_redirect[0].id
}
