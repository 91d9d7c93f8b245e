# Saved after every apply to config/generated/staging.terraform.json for `render`.

output "cluster_name" {
  description = "Name of the GKE cluster."
  value       = module.mybinder.cluster_name
}

output "cluster_endpoint" {
  description = "Address of the Kubernetes API."
  value       = module.mybinder.cluster_endpoint
}

output "location" {
  description = "Region of the cluster."
  value       = module.mybinder.location
}

output "registry_url" {
  description = "Artifact Registry host BinderHub pushes to."
  value       = module.mybinder.registry_url
}

output "image_prefix" {
  description = "BinderHub image_prefix."
  value       = module.mybinder.image_prefix
}

output "image_push_service_account" {
  description = "Service account BinderHub pushes images as."
  value       = module.mybinder.image_push_service_account
}
