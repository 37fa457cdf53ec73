# The edge's protections (docs/security.md says what each one stops and costs):
# modern TLS only on the HTTPS proxy, and Cloud Armor's per-client rate limit in
# front of the backend service. Both exist only with the load balancer.

# Without an SSL policy the proxy uses Google's default: the COMPATIBLE profile with
# TLS 1.0 as the minimum.
resource "google_compute_ssl_policy" "hello" {
  count           = local.lb
  name            = "${local.service}-tls"
  profile         = var.tls_profile
  min_tls_version = var.tls_min_version

  lifecycle {
    precondition {
      condition     = var.tls_min_version != "TLS_1_3" || var.tls_profile == "RESTRICTED"
      error_message = "tls_min_version = TLS_1_3 needs tls_profile = RESTRICTED: Google refuses a TLS 1.3 minimum with any other profile."
    }
  }
}

# Every client IP may send rate_limit_requests requests in rate_limit_interval_seconds;
# the rest are answered 429. One that keeps at it, past rate_limit_ban_requests in
# rate_limit_ban_interval_seconds, is answered 429 for everything for
# rate_limit_ban_seconds.
resource "google_compute_security_policy" "edge" {
  count       = var.load_balancer && var.cloud_armor ? 1 : 0
  name        = "${local.service}-edge"
  description = "${local.service}: per-client rate limit"
  type        = "CLOUD_ARMOR"

  rule {
    action      = "rate_based_ban"
    priority    = 1000
    description = "per client IP: 429 past the limit; banned on repeated excess"

    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }

    rate_limit_options {
      conform_action = "allow"
      exceed_action  = "deny(429)"
      enforce_on_key = "IP"

      rate_limit_threshold {
        count        = var.rate_limit_requests
        interval_sec = var.rate_limit_interval_seconds
      }
      ban_threshold {
        count        = var.rate_limit_ban_requests
        interval_sec = var.rate_limit_ban_interval_seconds
      }
      ban_duration_sec = var.rate_limit_ban_seconds
    }
  }

  # The default rule, which a policy must have: everything else passes.
  rule {
    action      = "allow"
    priority    = 2147483647
    description = "default: allow"

    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }
}
