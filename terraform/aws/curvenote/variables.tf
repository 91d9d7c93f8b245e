# federation-deploy passes region, cluster_name and kubernetes_version from the member's entry
# in config/federation.yaml; the defaults only serve a bare `terraform` run.

variable "region" {
  description = "AWS region of the cluster (members.curvenote.cluster.region)."
  type        = string
  default     = "us-east-2"
}

variable "cluster_name" {
  description = "Name of the EKS cluster (members.curvenote.cluster.name)."
  type        = string
  default     = "binderhub"
}

variable "kubernetes_version" {
  description = "Kubernetes version of the cluster (members.curvenote.kubernetes_version)."
  type        = string
  default     = "1.28"
}
