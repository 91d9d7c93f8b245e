# Kubernetes access for CD: an EKS access entry lets the deploy role (github.tf) into the
# cluster, with no aws-auth ConfigMap to edit by hand. Its association is cluster-wide admin
# because the member's releases install cluster-scoped objects (cert-manager's CRDs and
# webhooks, ingress-nginx's and the cluster autoscaler's ClusterRoles), which a namespaced
# policy cannot create.

resource "aws_eks_access_entry" "deploy" {
  count = var.enable_access_entries ? 1 : 0

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_iam_role.github["deploy"].arn
  type          = "STANDARD"

  tags = var.tags
}

resource "aws_eks_access_policy_association" "deploy" {
  count = var.enable_access_entries ? 1 : 0

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_eks_access_entry.deploy[0].principal_arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }
}
