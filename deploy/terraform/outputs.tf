output "load_balancer_ip" {
  description = "Point the domain's DNS A record here (null while load_balancer = false)."
  value       = one(google_compute_global_address.hello[*].address)
}

output "delivery_pipeline" {
  description = "The Cloud Deploy delivery pipeline that make release creates releases in: DELIVERY_PIPELINE for make release and CI."
  value       = google_clouddeploy_delivery_pipeline.hello.name
}

output "delivery_region" {
  description = "Where the pipeline lives: DELIVERY_REGION for make release and CI."
  value       = var.delivery_region
}

output "release_staging_dir" {
  description = "Where make release uploads each release's source: RELEASE_STAGING_DIR for make release and CI."
  value       = "gs://${google_storage_bucket.releases.name}/source"
}

output "release_order" {
  description = "The regions in the order a release reaches them: the canary, then the others at once."
  value       = { canary = var.canary_region, then = local.others }
}

output "ko_docker_repo" {
  description = "KO_DOCKER_REPO for make publish and CI: the Artifact Registry repository."
  value       = "${var.registry_region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.containers.repository_id}"
}
