# IAM roles of the control plane and of the nodes, with the AWS managed policies EKS documents.

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

locals {
  managed_policy           = "arn:${data.aws_partition.current.partition}:iam::aws:policy"
  cluster_managed_policies = ["AmazonEKSClusterPolicy", "AmazonEKSVPCResourceController"]
  node_managed_policies = [
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
  ]
  # the only AWS managed policies the terraform role may attach (github.tf)
  managed_policy_names = concat(local.cluster_managed_policies, local.node_managed_policies)
}

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = "${var.cluster_name}-cluster"
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  for_each = toset(local.cluster_managed_policies)

  role       = aws_iam_role.cluster.name
  policy_arn = "${local.managed_policy}/${each.key}"
}

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.cluster_name}-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset(local.node_managed_policies)

  role       = aws_iam_role.node.name
  policy_arn = "${local.managed_policy}/${each.key}"
}
