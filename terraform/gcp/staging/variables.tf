# federation-deploy passes project, location, cluster_name and kubernetes_version from
# members.staging in config/federation.yaml; the defaults only serve a bare `terraform` run.

variable "project" {
  description = "Google Cloud project (members.staging.cluster.project)."
  type        = string
  default     = "binderhub-288415"
}

variable "location" {
  description = "Region of the cluster (members.staging.cluster.location)."
  type        = string
  default     = "us-central1"
}

variable "cluster_name" {
  description = "Name of the GKE cluster (members.staging.cluster.name)."
  type        = string
  default     = "staging"
}

variable "kubernetes_version" {
  description = "Kubernetes version of the cluster (members.staging.kubernetes_version)."
  type        = string
  default     = "1.27"
}
