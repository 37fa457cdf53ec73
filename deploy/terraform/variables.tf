variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "regions" {
  description = "Regions to run the service in; the load balancer sends each client to the nearest healthy one."
  type        = list(string)
  default     = ["europe-west1", "us-east1", "us-west1", "asia-northeast1"]

  validation {
    condition     = length(var.regions) > 0 && length(var.regions) == length(distinct(var.regions))
    error_message = "Give at least one region, each once."
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

variable "min_instances" {
  description = "Instances kept warm in each region (0 lets a region scale to zero, at the cost of cold starts)."
  type        = number
  default     = 0
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
