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

variable "github_repository" {
  description = "owner/name of the repository whose workflows deploy and apply this member."
  type        = string
  default     = "jupyterhub/mybinder.org-deploy"
}

variable "create_github_oidc_provider" {
  description = "false when the AWS account already has GitHub's OIDC provider (it is then looked up)."
  type        = bool
  default     = true
}

variable "enable_access_entries" {
  description = "EKS access entries for the deploy role. Production: true. The AWS emulator of the tests and the sandbox (moto) has no access entries and sets TF_VAR_enable_access_entries=false."
  type        = bool
  default     = true
}
