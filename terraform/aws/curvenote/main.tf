# Curvenote's member of the federation: an EKS cluster in us-east-2 and the ECR registry its
# BinderHub pushes to. Everything lives in the binderhub-eks module; this root pins the sizes.

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      "managed-by"          = "federation-deploy"
      "mybinder.org/member" = "curvenote"
    }
  }
}

module "binderhub_eks" {
  source = "../modules/binderhub-eks"

  cluster_name       = var.cluster_name
  kubernetes_version = var.kubernetes_version

  vpc_cidr   = "10.10.0.0/16"
  zone_count = 3

  node_instance_type = "r5.xlarge"
  node_disk_size     = 100
  node_min_size      = 1
  node_desired_size  = 2
  node_max_size      = 6

  registry_prefix                    = "binderhub"
  registry_repositories              = ["binderhub-builder"]
  registry_helper_service_account    = "curvenote:binderhub-container-registry-helper"
  cluster_autoscaler_service_account = "kube-system:cluster-autoscaler"

  # GitHub Actions' roles (deploy, terraform-plan, terraform): no stored keys, no console steps.
  github_repository           = var.github_repository
  create_github_oidc_provider = var.create_github_oidc_provider
  enable_access_entries       = var.enable_access_entries
  # the backend's bucket and table (versions.tf; a backend block cannot take variables)
  terraform_state_bucket = "mybinder-curvenote-terraform-state"
  terraform_lock_table   = "mybinder-curvenote-terraform-locks"
}
