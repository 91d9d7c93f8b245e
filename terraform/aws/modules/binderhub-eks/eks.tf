# The EKS control plane, its OIDC provider (for IAM roles of service accounts) and the managed
# node group the BinderHub pods run on.

locals {
  # The tags the cluster autoscaler discovers node groups by, and that scope its IAM policy
  # (autoscaler.tf). EKS puts the same tags on the Auto Scaling group of a managed node group.
  autoscaler_tags = {
    "k8s.io/cluster-autoscaler/${var.cluster_name}" = "owned"
    "k8s.io/cluster-autoscaler/enabled"             = "true"
  }
}

resource "aws_eks_cluster" "this" {
  name     = var.cluster_name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  vpc_config {
    subnet_ids              = concat(aws_subnet.private[*].id, aws_subnet.public[*].id)
    endpoint_private_access = true
    endpoint_public_access  = true
  }

  # Who may use the Kubernetes API is managed with EKS access entries (access.tf), not the
  # aws-auth ConfigMap, so CD's role gets in with no hand-edited ConfigMap. Without access
  # entries (var.enable_access_entries = false) the cluster keeps the EKS default.
  dynamic "access_config" {
    for_each = var.enable_access_entries ? [var.authentication_mode] : []

    content {
      authentication_mode = access_config.value
      # Whoever runs the first apply (an administrator) keeps cluster admin: the way in
      # before CD's role exists. Changing it would replace the cluster.
      bootstrap_cluster_creator_admin_permissions = true
    }
  }

  tags = var.tags

  # The control plane needs its policies while it is created and while it is destroyed.
  depends_on = [aws_iam_role_policy_attachment.cluster]
}

resource "aws_iam_openid_connect_provider" "cluster" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]

  tags = var.tags
}

resource "aws_eks_node_group" "nodes" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "${var.cluster_name}-nodes"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = aws_subnet.private[*].id
  instance_types  = [var.node_instance_type]
  disk_size       = var.node_disk_size

  scaling_config {
    min_size     = var.node_min_size
    desired_size = var.node_desired_size
    max_size     = var.node_max_size
  }

  labels = {
    "mybinder.org/node-purpose" = "binderhub"
  }

  tags = merge(var.tags, local.autoscaler_tags)

  lifecycle {
    ignore_changes = [
      # The cluster autoscaler changes the node count; terraform must not undo it.
      scaling_config[0].desired_size,
      # We configure no SSH access, yet some EKS APIs (the local emulator among them) report a
      # default remote_access block; remote_access forces replacement, so a diff here would
      # replace the node group on every apply.
      remote_access,
    ]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}
