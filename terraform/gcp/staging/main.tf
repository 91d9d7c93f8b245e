# The staging cluster of mybinder.org (member `staging` in config/federation.yaml).

provider "google" {
  project = var.project
  region  = var.location
}

module "mybinder" {
  source = "../modules/mybinder"

  project            = var.project
  location           = var.location
  cluster_name       = var.cluster_name
  kubernetes_version = var.kubernetes_version

  core_node_count = 1
  user_min_nodes  = 1
  user_max_nodes  = 3

  registry_name = "binderhub-staging"

  labels = {
    "managed-by"          = "federation-deploy"
    "mybinder-org-member" = "staging"
  }
}
