# Saved after every apply to config/generated/curvenote.terraform.json; `render` puts the ones
# listed under members.curvenote.terraform.outputs in federation.yaml into the Helm values.

output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.binderhub_eks.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API."
  value       = module.binderhub_eks.cluster_endpoint
}

output "region" {
  description = "AWS region of the cluster."
  value       = module.binderhub_eks.region
}

output "registry_url" {
  description = "ECR registry BinderHub pushes to."
  value       = module.binderhub_eks.registry_url
}

output "image_prefix" {
  description = "BinderHub image_prefix."
  value       = module.binderhub_eks.image_prefix
}

output "registry_helper_role_arn" {
  description = "IAM role of the registry helper's service account."
  value       = module.binderhub_eks.registry_helper_role_arn
}
