# The Artifact Registry repository the images are published to (KO_DOCKER_REPO =
# REGISTRY_REGION-docker.pkg.dev/PROJECT/containers): created here so that it scans
# what it stores and does not keep every untagged image forever.

# Artifact Analysis scans each image pushed to a repository whose scanning is on,
# once per digest, for known vulnerabilities in its OS packages and Go modules.
resource "google_project_service" "container_scanning" {
  count              = var.registry_scanning ? 1 : 0
  project            = var.project
  service            = "containerscanning.googleapis.com"
  disable_on_destroy = false
}

locals {
  # KO_DOCKER_REPO: where make publish and make publish-probe push (output ko_docker_repo).
  registry_url = "${var.registry_region}-docker.pkg.dev/${var.project}/${var.registry_repository}"
}

resource "google_artifact_registry_repository" "containers" {
  location      = var.registry_region
  repository_id = var.registry_repository
  format        = "DOCKER"
  description   = "${local.service} images, published by make publish and CI"

  vulnerability_scanning_config {
    # INHERITED: scan, as the project's Container Scanning API is on (above).
    enablement_config = var.registry_scanning ? "INHERITED" : "DISABLED"
  }

  # A digest is deleted only when it has had no tag for 30 days and is not among the
  # 10 most recent versions; one tagged v* never is. Every image make publish pushes
  # keeps its VERSION tag (git describe), so a released image stays tagged; what
  # loses every tag is an image whose tags were moved or removed. When a delete and a
  # keep policy both match, the image is kept.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "delete-untagged-after-30-days"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "30d"
    }
  }
  cleanup_policies {
    id     = "keep-releases"
    action = "KEEP"
    condition {
      tag_state    = "TAGGED"
      tag_prefixes = ["v"]
    }
  }
  cleanup_policies {
    id     = "keep-the-latest-10"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  depends_on = [google_project_service.container_scanning]
}

# CI pushes images to it, and nothing else.
resource "google_artifact_registry_repository_iam_member" "ci_publishes" {
  count      = var.ci_service_account == "" ? 0 : 1
  location   = google_artifact_registry_repository.containers.location
  repository = google_artifact_registry_repository.containers.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${var.ci_service_account}"
}
