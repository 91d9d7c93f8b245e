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
