terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # readiness_probe (Cloud Run service health) arrived in 7.19.0.
      version = ">= 7.19.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.project
}
