# The container registry BinderHub pushes built images to, and the IAM role the registry helper
# (binderhub-container-registry-helper) assumes through the cluster's OIDC provider to create
# repositories under the prefix and hand BinderHub short-lived push credentials.

locals {
  registry_url    = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${data.aws_region.current.name}.amazonaws.com"
  repository_arns = "arn:${data.aws_partition.current.partition}:ecr:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:repository/${var.registry_prefix}/*"
  oidc_issuer     = trimprefix(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://")
  helper_sa       = split(":", var.registry_helper_service_account)
}

resource "aws_ecr_repository" "binderhub" {
  for_each = toset(var.registry_repositories)

  name                 = "${var.registry_prefix}/${each.key}"
  image_tag_mutability = "MUTABLE"

  image_scanning_configuration {
    scan_on_push = false
  }

  tags = var.tags
}

data "aws_iam_policy_document" "registry_helper" {
  statement {
    sid = "ManageRepositoriesUnderPrefix"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchDeleteImage",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:CreateRepository",
      "ecr:DeleteRepository",
      "ecr:DescribeImages",
      "ecr:DescribeRepositories",
      "ecr:GetDownloadUrlForLayer",
      "ecr:GetLifecyclePolicy",
      "ecr:InitiateLayerUpload",
      "ecr:ListImages",
      "ecr:PutImage",
      "ecr:PutLifecyclePolicy",
      "ecr:UploadLayerPart",
    ]
    resources = [local.repository_arns]
  }

  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "registry_helper" {
  name        = "${var.cluster_name}-registry-helper"
  description = "BinderHub registry helper: create and push to ECR repositories under ${var.registry_prefix}/"
  policy      = data.aws_iam_policy_document.registry_helper.json

  tags = var.tags
}

data "aws_iam_policy_document" "registry_helper_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.cluster.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${local.helper_sa[0]}:${local.helper_sa[1]}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "registry_helper" {
  name               = "${var.cluster_name}-registry-helper"
  assume_role_policy = data.aws_iam_policy_document.registry_helper_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "registry_helper" {
  role       = aws_iam_role.registry_helper.name
  policy_arn = aws_iam_policy.registry_helper.arn
}
