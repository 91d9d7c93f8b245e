variable "cluster_name" {
  description = "Name of the EKS cluster; also the prefix of every named resource."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the cluster, like \"1.28\" (from federation.yaml)."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.kubernetes_version))
    error_message = "The kubernetes_version must look like \"1.28\"."
  }
}

variable "vpc_cidr" {
  description = "Address range of the VPC; each subnet takes a /20 of it."
  type        = string
  default     = "10.0.0.0/16"
}

variable "zone_count" {
  description = "Number of availability zones to spread subnets (and so nodes) over."
  type        = number
  default     = 2

  validation {
    condition     = var.zone_count >= 2 && var.zone_count <= 6
    error_message = "EKS needs subnets in at least 2 zones; at most 6 are supported here."
  }
}

variable "node_instance_type" {
  description = "EC2 instance type of the managed node group."
  type        = string
  default     = "r5.xlarge"
}

variable "node_disk_size" {
  description = "Root volume size of each node, in GiB (images are built and pulled there)."
  type        = number
  default     = 100
}

variable "node_min_size" {
  description = "Fewest nodes in the node group."
  type        = number
  default     = 1
}

variable "node_desired_size" {
  description = "Initial number of nodes; the cluster autoscaler owns it afterwards."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Most nodes in the node group."
  type        = number
  default     = 6
}

variable "registry_prefix" {
  description = "ECR repository prefix BinderHub pushes under: images are <registry>/<prefix>/<name>."
  type        = string
  default     = "binderhub"
}

variable "registry_repositories" {
  description = "Repositories created up front under the prefix; the registry helper creates the others on demand."
  type        = list(string)
  default     = ["binderhub-builder"]
}

variable "registry_helper_service_account" {
  description = "namespace:name of the Kubernetes service account of the container registry helper."
  type        = string
  default     = "binderhub:binderhub-container-registry-helper"
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

variable "cluster_autoscaler_service_account" {
  description = "namespace:name of the Kubernetes service account of the cluster autoscaler."
  type        = string
  default     = "kube-system:cluster-autoscaler"

  validation {
    condition     = can(regex("^[a-z0-9-]+:[a-z0-9-]+$", var.cluster_autoscaler_service_account))
    error_message = "The cluster_autoscaler_service_account must look like namespace:name."
  }
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows may assume the deploy and terraform roles."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "The github_repository must look like owner/name."
  }
}

variable "github_branch" {
  description = "The branch whose pushes deploy (cd.yml) and plan (terraform.yml)."
  type        = string
  default     = "main"
}

variable "github_deploy_environment" {
  description = "GitHub environment whose jobs may also assume the deploy role."
  type        = string
  default     = "production"
}

variable "github_apply_environment" {
  description = "GitHub environment (with required reviewers) of terraform.yml's apply job: the only subject of the terraform role."
  type        = string
  default     = "terraform-apply"
}

variable "create_github_oidc_provider" {
  description = "Create the account's OIDC provider for token.actions.githubusercontent.com; false when the account has one already (it is looked up)."
  type        = bool
  default     = true
}

variable "enable_access_entries" {
  description = "Manage Kubernetes access with EKS access entries (authentication mode below, the deploy role's entry). Only an emulator without them (moto) sets false."
  type        = bool
  default     = true
}

variable "authentication_mode" {
  description = "EKS authentication mode when access entries are enabled: API, or API_AND_CONFIG_MAP for a cluster that still needs its aws-auth ConfigMap."
  type        = string
  default     = "API"

  validation {
    condition     = contains(["API", "API_AND_CONFIG_MAP"], var.authentication_mode)
    error_message = "The authentication_mode must be API or API_AND_CONFIG_MAP."
  }
}

variable "terraform_state_bucket" {
  description = "S3 bucket of the stack's state (the backend's bucket): the terraform roles read and write it."
  type        = string
}

variable "terraform_lock_table" {
  description = "DynamoDB table of the stack's state lock (the backend's dynamodb_table)."
  type        = string
}
