output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API of the cluster."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 PEM of the cluster's certificate authority."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "region" {
  description = "AWS region of the cluster and the registry."
  value       = data.aws_region.current.name
}

output "registry_url" {
  description = "The ECR registry BinderHub pushes to (no scheme, no path)."
  value       = local.registry_url
}

output "image_prefix" {
  description = "BinderHub's image_prefix: built images are named <image_prefix><name>."
  value       = "${local.registry_url}/${var.registry_prefix}/"
}

output "registry_helper_role_arn" {
  description = "IAM role the registry helper's service account assumes (IRSA annotation)."
  value       = aws_iam_role.registry_helper.arn
}

output "vpc_id" {
  description = "The cluster's VPC."
  value       = aws_vpc.this.id
}

output "cluster_autoscaler_role_arn" {
  description = "IAM role the cluster autoscaler's service account assumes (IRSA annotation)."
  value       = aws_iam_role.cluster_autoscaler.arn
}

output "github_oidc_provider_arn" {
  description = "The account's OIDC provider for GitHub Actions tokens."
  value       = local.github_provider
}

output "deploy_role_arn" {
  description = "Role cd.yml assumes (main, production environment): describe the cluster, cluster admin through an access entry."
  value       = aws_iam_role.github["deploy"].arn
}

output "terraform_plan_role_arn" {
  description = "Role terraform.yml's plan and drift check assume (pull requests, main): read-only, state lock."
  value       = aws_iam_role.github["terraform-plan"].arn
}

output "terraform_role_arn" {
  description = "Role terraform.yml's apply assumes (approval environment only)."
  value       = aws_iam_role.github["terraform"].arn
}
