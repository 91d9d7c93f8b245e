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

output "cluster_autoscaler_role_arn" {
  description = "IAM role of the cluster autoscaler's service account."
  value       = module.binderhub_eks.cluster_autoscaler_role_arn
}

# The roles of GitHub Actions: the workflows read them from
# config/generated/curvenote.terraform.json, so no secret holds an ARN.

output "deploy_role_arn" {
  description = "cd.yml's role (main branch, production environment)."
  value       = module.binderhub_eks.deploy_role_arn
}

output "terraform_plan_role_arn" {
  description = "terraform.yml's plan and check role (pull requests, main)."
  value       = module.binderhub_eks.terraform_plan_role_arn
}

output "terraform_role_arn" {
  description = "terraform.yml's apply role (terraform-apply environment only)."
  value       = module.binderhub_eks.terraform_role_arn
}

output "github_oidc_provider_arn" {
  description = "The account's OIDC provider for GitHub Actions."
  value       = module.binderhub_eks.github_oidc_provider_arn
}
