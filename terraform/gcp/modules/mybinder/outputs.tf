output "cluster_name" {
  description = "Name of the GKE cluster."
  value       = google_container_cluster.this.name
}

output "cluster_endpoint" {
  description = "Address of the Kubernetes API."
  value       = google_container_cluster.this.endpoint
}

output "location" {
  description = "Region or zone of the cluster."
  value       = google_container_cluster.this.location
}

output "registry_url" {
  description = "The Artifact Registry host BinderHub pushes to."
  value       = "${google_artifact_registry_repository.binderhub.location}-docker.pkg.dev"
}

output "image_prefix" {
  description = "BinderHub image_prefix: built images are named <image_prefix><name>."
  value       = "${google_artifact_registry_repository.binderhub.location}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.binderhub.repository_id}/"
}

output "image_push_service_account" {
  description = "Email of the service account BinderHub pushes images as."
  value       = google_service_account.binderhub_pusher.email
}
