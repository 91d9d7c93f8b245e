# GitHub Actions' way into this AWS member with no stored keys and no console steps: the
# account's OIDC provider for GitHub's token issuer, and three roles that only this repository's
# workflows can assume:
#   - deploy:         cd.yml on main (or the production environment); describes the cluster,
#                     and is let into Kubernetes by an access entry (access.tf);
#   - terraform-plan: terraform.yml plans and drift checks on pull requests and on main;
#                     reads only, plus the state lock;
#   - terraform:      terraform.yml's apply job, only behind the approval environment;
#                     manages what the stacks manage, plus the state.
# Plan and apply are separate roles because a role cannot tell a pull request's token from the
# approved apply's once assumed: a pull request that edits the workflow must not be able to apply.

locals {
  github_issuer   = "token.actions.githubusercontent.com"
  github_subject  = "repo:${var.github_repository}"
  account_id      = data.aws_caller_identity.current.account_id
  partition       = data.aws_partition.current.partition
  region          = data.aws_region.current.name
  cluster_arn     = "arn:${local.partition}:eks:${local.region}:${local.account_id}:cluster/${var.cluster_name}"
  github_provider = var.create_github_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn

  # The subjects (`sub` claims) GitHub puts in the tokens of the jobs that may assume each role.
  deploy_subjects = [
    "${local.github_subject}:ref:refs/heads/${var.github_branch}",
    "${local.github_subject}:environment:${var.github_deploy_environment}",
  ]
  plan_subjects = [
    "${local.github_subject}:ref:refs/heads/${var.github_branch}",
    "${local.github_subject}:pull_request",
  ]
  apply_subjects = [
    "${local.github_subject}:environment:${var.github_apply_environment}",
  ]

  state_bucket_arn = "arn:${local.partition}:s3:::${var.terraform_state_bucket}"
  lock_table_arn   = "arn:${local.partition}:dynamodb:${local.region}:${local.account_id}:table/${var.terraform_lock_table}"
  iam_prefix       = "arn:${local.partition}:iam::${local.account_id}"
}

# One OIDC provider per account and issuer: the first member in an account creates it, the
# others look it up (create_github_oidc_provider = false). AWS trusts GitHub's issuer through
# its certificate authority, so no thumbprint is pinned.
resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 1 : 0

  url            = "https://${local.github_issuer}"
  client_id_list = ["sts.amazonaws.com"]

  tags = var.tags
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 0 : 1

  url = "https://${local.github_issuer}"
}

# -- trust policies ---------------------------------------------------------------------------

data "aws_iam_policy_document" "github_assume" {
  for_each = {
    deploy         = local.deploy_subjects
    terraform-plan = local.plan_subjects
    terraform      = local.apply_subjects
  }

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_provider]
    }

    # Exact subjects (StringEquals, no wildcards): a fork, another repository or another
    # branch never matches.
    condition {
      test     = "StringEquals"
      variable = "${local.github_issuer}:sub"
      values   = each.value
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "github" {
  for_each = data.aws_iam_policy_document.github_assume

  name                 = "${var.cluster_name}-github-${each.key}"
  description          = "GitHub Actions of ${var.github_repository}: ${each.key} (federation-deploy)"
  assume_role_policy   = each.value.json
  max_session_duration = 3600

  tags = var.tags
}

# -- deploy: find the cluster; Kubernetes permissions come from the access entry -------------

data "aws_iam_policy_document" "github_deploy" {
  statement {
    sid       = "KubeconfigOfThisCluster"
    actions   = ["eks:DescribeCluster"]
    resources = [local.cluster_arn]
  }
}

# -- terraform: read the state and take its lock (plan and apply) -----------------------------

data "aws_iam_policy_document" "terraform_state" {
  statement {
    sid       = "StateBucket"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }

  statement {
    sid       = "ReadState"
    actions   = ["s3:GetObject"]
    resources = ["${local.state_bucket_arn}/*"]
  }

  statement {
    sid       = "StateLock"
    actions   = ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
    resources = [local.lock_table_arn]
  }
}

# -- terraform-plan: read what the stack manages (plan refreshes), lock the state -------------

data "aws_iam_policy_document" "terraform_plan" {
  source_policy_documents = [data.aws_iam_policy_document.terraform_state.json]

  statement {
    sid = "ReadWhatTheStackManages"
    actions = [
      "ec2:Describe*",
      "eks:Describe*",
      "eks:List*",
      "iam:GetOpenIDConnectProvider",
      "iam:GetPolicy",
      "iam:GetPolicyVersion",
      "iam:GetRole",
      "iam:ListAttachedRolePolicies",
      "iam:ListOpenIDConnectProviders",
      "iam:ListPolicyVersions",
      "iam:ListRolePolicies",
      "ecr:DescribeRepositories",
      "ecr:GetLifecyclePolicy",
      "ecr:GetRepositoryPolicy",
      "ecr:ListTagsForResource",
    ]
    resources = ["*"]
  }
}

# -- terraform: manage what the stacks manage, and nothing named otherwise --------------------

data "aws_iam_policy_document" "terraform_apply" {
  source_policy_documents = [data.aws_iam_policy_document.terraform_plan.json]

  statement {
    sid       = "WriteState"
    actions   = ["s3:PutObject"]
    resources = ["${local.state_bucket_arn}/*"]
  }

  statement {
    sid = "Network"
    actions = [
      "ec2:AllocateAddress",
      "ec2:AssociateRouteTable",
      "ec2:AttachInternetGateway",
      "ec2:CreateInternetGateway",
      "ec2:CreateNatGateway",
      "ec2:CreateRoute",
      "ec2:CreateRouteTable",
      "ec2:CreateSubnet",
      "ec2:CreateTags",
      "ec2:CreateVpc",
      "ec2:DeleteInternetGateway",
      "ec2:DeleteNatGateway",
      "ec2:DeleteRoute",
      "ec2:DeleteRouteTable",
      "ec2:DeleteSubnet",
      "ec2:DeleteTags",
      "ec2:DeleteVpc",
      "ec2:DetachInternetGateway",
      "ec2:DisassociateAddress",
      "ec2:DisassociateRouteTable",
      "ec2:ModifySubnetAttribute",
      "ec2:ModifyVpcAttribute",
      "ec2:ReleaseAddress",
      "ec2:ReplaceRoute",
    ]
    # EC2 network resources have generated IDs, not names: the region is the scope.
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [local.region]
    }
  }

  statement {
    sid = "ThisCluster"
    actions = [
      "eks:AssociateAccessPolicy",
      "eks:CreateAccessEntry",
      "eks:CreateCluster",
      "eks:CreateNodegroup",
      "eks:DeleteAccessEntry",
      "eks:DeleteCluster",
      "eks:DeleteNodegroup",
      "eks:DisassociateAccessPolicy",
      "eks:TagResource",
      "eks:UntagResource",
      "eks:UpdateAccessEntry",
      "eks:UpdateClusterConfig",
      "eks:UpdateClusterVersion",
      "eks:UpdateNodegroupConfig",
      "eks:UpdateNodegroupVersion",
    ]
    resources = [
      local.cluster_arn,
      "arn:${local.partition}:eks:${local.region}:${local.account_id}:nodegroup/${var.cluster_name}/*",
      "arn:${local.partition}:eks:${local.region}:${local.account_id}:access-entry/${var.cluster_name}/*",
    ]
  }

  statement {
    sid = "RolesAndPoliciesOfThisCluster"
    actions = [
      "iam:CreatePolicy",
      "iam:CreatePolicyVersion",
      "iam:CreateRole",
      "iam:DeletePolicy",
      "iam:DeletePolicyVersion",
      "iam:DeleteRole",
      "iam:ListInstanceProfilesForRole",
      "iam:TagPolicy",
      "iam:TagRole",
      "iam:UntagPolicy",
      "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRole",
    ]
    resources = [
      "${local.iam_prefix}:role/${var.cluster_name}-*",
      "${local.iam_prefix}:policy/${var.cluster_name}-*",
    ]
  }

  statement {
    sid     = "AttachOnlyThePoliciesTheStacksUse"
    actions = ["iam:AttachRolePolicy", "iam:DetachRolePolicy"]
    # No inline policies (PutRolePolicy) and no policy but these: the stacks' own, and the
    # AWS managed ones EKS documents for the cluster and node roles.
    resources = ["${local.iam_prefix}:role/${var.cluster_name}-*"]

    condition {
      test     = "ArnLike"
      variable = "iam:PolicyARN"
      values = concat(
        ["${local.iam_prefix}:policy/${var.cluster_name}-*"],
        [for name in local.managed_policy_names : "${local.managed_policy}/${name}"],
      )
    }
  }

  statement {
    sid       = "PassTheClusterAndNodeRolesToEKS"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.cluster.arn, aws_iam_role.node.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["eks.amazonaws.com"]
    }
  }

  statement {
    sid       = "EKSServiceLinkedRoles"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["eks.amazonaws.com", "eks-nodegroup.amazonaws.com"]
    }
  }

  statement {
    sid = "OIDCProviders"
    actions = [
      "iam:AddClientIDToOpenIDConnectProvider",
      "iam:CreateOpenIDConnectProvider",
      "iam:DeleteOpenIDConnectProvider",
      "iam:RemoveClientIDFromOpenIDConnectProvider",
      "iam:TagOpenIDConnectProvider",
      "iam:UntagOpenIDConnectProvider",
      "iam:UpdateOpenIDConnectProviderThumbprint",
    ]
    resources = [
      "${local.iam_prefix}:oidc-provider/oidc.eks.${local.region}.amazonaws.com/id/*",
      "${local.iam_prefix}:oidc-provider/${local.github_issuer}",
    ]
  }

  statement {
    sid = "RegistryRepositories"
    actions = [
      "ecr:CreateRepository",
      "ecr:DeleteRepository",
      "ecr:PutImageScanningConfiguration",
      "ecr:PutImageTagMutability",
      "ecr:TagResource",
      "ecr:UntagResource",
    ]
    resources = [local.repository_arns]
  }
}

resource "aws_iam_policy" "github" {
  for_each = {
    deploy         = data.aws_iam_policy_document.github_deploy.json
    terraform-plan = data.aws_iam_policy_document.terraform_plan.json
    terraform      = data.aws_iam_policy_document.terraform_apply.json
  }

  name        = "${var.cluster_name}-github-${each.key}"
  description = "GitHub Actions of ${var.github_repository}: ${each.key} (federation-deploy)"
  policy      = each.value

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "github" {
  for_each = aws_iam_policy.github

  role       = aws_iam_role.github[each.key].name
  policy_arn = each.value.arn
}
