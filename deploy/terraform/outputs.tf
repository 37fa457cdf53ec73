output "load_balancer_ip" {
  description = "Point the domain's DNS A record here."
  value       = google_compute_global_address.hello.address
}

output "service_urls" {
  description = "Each region's run.app URL. Ingress is limited to load balancers, so these refuse requests from the internet."
  value       = { for region, service in google_cloud_run_v2_service.hello : region => service.uri }
}
