variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "regions" {
  description = "Regions to run the service in; the load balancer sends each client to the nearest healthy one."
  type        = list(string)
  default     = ["europe-west1", "us-east1", "us-west1", "asia-northeast1"]

  validation {
    # Failing over needs somewhere to fail over to; Cloud Run service health needs
    # services in at least two regions.
    condition     = length(var.regions) >= 2 && length(var.regions) == length(distinct(var.regions))
    error_message = "Give at least two regions, each once: with one, there is nowhere to fail over to."
  }
}

variable "image" {
  description = "The image by digest, as `make publish` prints it: REGION-docker.pkg.dev/PROJECT/REPOSITORY/hello@sha256:..."
  type        = string

  validation {
    # A tag such as :latest can change under a running service, and each region
    # could pull a different image; a digest cannot.
    condition     = can(regex("@sha256:[0-9a-f]{64}$", var.image))
    error_message = "Give the image by digest (NAME@sha256:...), as the last line of `make publish` prints it, not by tag."
  }
}

variable "domain" {
  description = "Domain the load balancer serves, e.g. hello.example.com; its DNS A record must point at the load_balancer_ip output."
  type        = string
}

variable "service_name" {
  description = "Name of the Cloud Run service in every region, and prefix of the load balancer's resources."
  type        = string
  default     = "hello"
}

variable "failover" {
  description = "Move traffic away from a region whose instances fail their readiness probes (Cloud Run service health). Needs min_instances >= 1."
  type        = bool
  default     = true
}

variable "min_instances" {
  description = "Instances kept running in each region. Service health (var.failover) needs at least 1 in every region, and minimum instances are billed while idle: with the defaults, 1 instance x 4 regions of 1 vCPU and 256 MiB, around the clock. 0 lets each region scale to zero, without automatic failover."
  type        = number
  default     = 1

  validation {
    condition     = var.min_instances >= 0 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances is a whole number, 0 or more."
  }
}

variable "lb_retries" {
  description = "How many times the load balancer retries a GET, HEAD or OPTIONS request that could not connect, was refused, or got a 502, 503 or 504. Each retry is a request Cloud Run bills. Other methods have no retry policy. 0 configures none at all (see FAILOVER.md)."
  type        = number
  default     = 1

  validation {
    condition     = var.lb_retries >= 0 && floor(var.lb_retries) == var.lb_retries
    error_message = "lb_retries is a whole number, 0 or more."
  }
}

variable "lb_per_try_timeout_seconds" {
  description = "Seconds the load balancer waits for each try of a GET, HEAD or OPTIONS request before it gives up on that try: what such a request can cost when a region hangs. Raise it if a GET can legitimately take longer. Unset, it would be the serverless backend timeout, fixed at 60 minutes."
  type        = number
  default     = 5

  validation {
    condition     = var.lb_per_try_timeout_seconds >= 1 && floor(var.lb_per_try_timeout_seconds) == var.lb_per_try_timeout_seconds
    error_message = "lb_per_try_timeout_seconds is a whole number of seconds, 1 or more."
  }
}

variable "max_instances" {
  description = "Most instances in each region."
  type        = number
  default     = 10
}

variable "deletion_protection" {
  description = "Refuse to destroy the Cloud Run services."
  type        = bool
  default     = false
}
