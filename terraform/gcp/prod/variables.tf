# federation-deploy passes project, location, cluster_name and kubernetes_version from
# members.gke in config/federation.yaml; the defaults only serve a bare `terraform` run.

variable "project" {
  description = "Google Cloud project (members.gke.cluster.project)."
  type        = string
  default     = "binderhub-288415"
}

variable "location" {
  description = "Region of the cluster (members.gke.cluster.location)."
  type        = string
  default     = "us-central1"
}

variable "cluster_name" {
  description = "Name of the GKE cluster (members.gke.cluster.name)."
  type        = string
  default     = "prod"
}

variable "kubernetes_version" {
  description = "Kubernetes version of the cluster (members.gke.kubernetes_version)."
  type        = string
  default     = "1.27"
}
