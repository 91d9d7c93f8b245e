# The prod cluster of mybinder.org (member `gke` in config/federation.yaml).

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

  core_node_count = 2
  user_min_nodes  = 2
  user_max_nodes  = 12

  registry_name = "binderhub-prod"

  labels = {
    "managed-by"          = "federation-deploy"
    "mybinder-org-member" = "gke"
  }
}
