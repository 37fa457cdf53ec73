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

output "release_name_max_length" {
  description = "How long a release's name may be, so that gcloud's name for its first rollout on any target (RELEASE-to-TARGET-0001) stays within 63 characters: RELEASE_NAME_MAX for make release."
  value       = local.release_name_max_length
}

output "release_order" {
  description = "The regions in the order a release reaches them: the canary, then the others at once."
  value       = { canary = var.canary_region, then = local.others }
}

output "ko_docker_repo" {
  description = "KO_DOCKER_REPO for make publish and CI: the Artifact Registry repository."
  value       = local.registry_url
}

output "monitoring_dashboard" {
  description = "The service's dashboard in the Google Cloud console (null while load_balancer = false)."
  value       = local.dashboard_url
}

output "slo_ids" {
  description = "Each objective's id, by name (availability-all, latency-europe-west1, ...): for select_slo_burn_rate and select_slo_budget_fraction."
  value       = { for name, slo in local.slos : name => slo.id }
}

output "alerts_notify" {
  description = "Who the burn-rate and uptime alerts e-mail. Empty: nobody."
  value       = [for c in google_monitoring_notification_channel.email : c.labels.email_address]
}
