terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Cloud Deploy's analysis block arrived in 7.31.0.
      version = ">= 7.31.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.project
}
