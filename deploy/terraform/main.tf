# The service in several regions behind one global HTTPS load balancer:
#
#   client -> global forwarding rule :443 -> HTTPS proxy -> URL map -> backend service
#          -> serverless NEG (one per region) -> Cloud Run service (one per region)
#
# and :80 -> HTTP proxy -> a URL map that only redirects to https.
#
# Based on Google's run/multiple_regions sample, with these changes: one backend per
# region whatever their number (the sample hard-codes two), the image by digest,
# ingress only from load balancers, a runtime service account with no roles, the
# certificate for var.domain (the sample ignores its variable), port 80 on the same
# load-balancing scheme as 443, outlier detection, retries of safe requests at the load
# balancer, and no https redirect rule in the HTTPS URL map.

locals {
  regions = toset(var.regions)
}

# The identity the service runs as. It needs no role: the service calls no Google
# API except the metadata server, which needs none. Without it Cloud Run would use
# the Compute Engine default service account, which has Editor on the project.
resource "google_service_account" "runtime" {
  account_id   = "${var.service_name}-runtime"
  display_name = "${var.service_name} Cloud Run runtime (no roles)"
}

resource "google_cloud_run_v2_service" "hello" {
  for_each = local.regions

  name                = var.service_name
  location            = each.key
  deletion_protection = var.deletion_protection

  # Only the load balancer (and internal traffic) reaches the service; its run.app
  # URL refuses requests from the internet, so every request sees the same
  # front door and TLS policy.
  ingress = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"

  lifecycle {
    # Service health needs an instance in the region to probe.
    precondition {
      condition     = !var.failover || var.min_instances >= 1
      error_message = "failover = true needs min_instances >= 1: Cloud Run service health computes a region's health from its running instances. Set min_instances = 1 (billed while idle), or failover = false."
    }
  }

  template {
    service_account = google_service_account.runtime.email

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "256Mi"
        }
        cpu_idle = true
      }

      # The service starts in milliseconds: probe every second from the start, and
      # give up after 10 s rather than the default 240 s.
      startup_probe {
        period_seconds    = 1
        timeout_seconds   = 1
        failure_threshold = 10
        http_get {
          path = "/health/"
        }
      }

      # Cloud Run service health: a region is healthy while 60 % of its instances
      # pass. An instance is unready after 3 failures 5 s apart, ready again after 2
      # passes. Without this probe a revision reports "unknown", which the load
      # balancer treats as healthy.
      readiness_probe {
        period_seconds    = 5
        timeout_seconds   = 1
        failure_threshold = 3
        success_threshold = 2
        http_get {
          path = "/health/"
        }
      }
    }
  }
}

# The load balancer's requests carry no identity, so the service admits everyone;
# ingress above keeps the internet at the load balancer.
resource "google_cloud_run_v2_service_iam_member" "public" {
  for_each = google_cloud_run_v2_service.hello

  project  = each.value.project
  location = each.value.location
  name     = each.value.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_compute_region_network_endpoint_group" "hello" {
  for_each = google_cloud_run_v2_service.hello

  name                  = "${var.service_name}-${each.key}"
  region                = each.key
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = each.value.name
  }
}

resource "google_compute_backend_service" "hello" {
  name                  = var.service_name
  load_balancing_scheme = "EXTERNAL_MANAGED"

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

# Requests with a safe method (GET, HEAD, OPTIONS) are retried by the load balancer when
# a region fails them at the transport level or with a gateway error. Other methods
# reach the default service and have no retry policy, so a request that may change
# something is never sent twice by this rule. FAILOVER.md cites the documentation.
resource "google_compute_url_map" "https" {
  name            = "${var.service_name}-https"
  default_service = google_compute_backend_service.hello.id

  host_rule {
    hosts        = ["*"]
    path_matcher = "hello"
  }

  path_matcher {
    name            = "hello"
    default_service = google_compute_backend_service.hello.id

    dynamic "route_rules" {
      for_each = var.lb_retries > 0 ? ["safe methods"] : []
      content {
        priority = 1

        match_rules {
          prefix_match = "/"
          header_matches {
            header_name = ":method"
            regex_match = "^(GET|HEAD|OPTIONS)$"
          }
        }

        route_action {
          weighted_backend_services {
            backend_service = google_compute_backend_service.hello.id
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
  name = "${var.service_name}-cert"

  managed {
    domains = [var.domain]
  }
}

resource "google_compute_target_https_proxy" "hello" {
  name             = "${var.service_name}-https"
  url_map          = google_compute_url_map.https.id
  ssl_certificates = [google_compute_managed_ssl_certificate.hello.id]
}

resource "google_compute_global_address" "hello" {
  name = "${var.service_name}-ip"
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = "${var.service_name}-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.hello.id
  port_range            = "443"
  target                = google_compute_target_https_proxy.hello.id
}

# Port 80 answers every request with a redirect to the same URL on https, so that
# plain-http requests never reach the service.
resource "google_compute_url_map" "http_redirect" {
  name = "${var.service_name}-http-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "http_redirect" {
  name    = "${var.service_name}-http-redirect"
  url_map = google_compute_url_map.http_redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  name                  = "${var.service_name}-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.hello.id
  port_range            = "80"
  target                = google_compute_target_http_proxy.http_redirect.id
}
