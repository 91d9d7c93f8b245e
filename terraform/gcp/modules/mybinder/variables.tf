variable "project" {
  description = "Google Cloud project of the cluster and the registry."
  type        = string
}

variable "location" {
  description = "Region (regional cluster) or zone (zonal cluster) of the cluster."
  type        = string
}

variable "cluster_name" {
  description = "Name of the GKE cluster; also the prefix of the other named resources."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane, like \"1.27\" (from federation.yaml)."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.kubernetes_version))
    error_message = "The kubernetes_version must look like \"1.27\"."
  }
}

variable "release_channel" {
  description = "GKE release channel; UNSPECIFIED keeps the version where kubernetes_version puts it."
  type        = string
  default     = "UNSPECIFIED"
}

variable "core_machine_type" {
  description = "Machine type of the core pool (hub, binder, ingress, redirector)."
  type        = string
  default     = "n2-highmem-4"
}

variable "core_node_count" {
  description = "Nodes in the core pool, per zone of the cluster."
  type        = number
  default     = 1
}

variable "user_machine_type" {
  description = "Machine type of the user pool (build and notebook pods)."
  type        = string
  default     = "n2-highmem-8"
}

variable "user_min_nodes" {
  description = "Fewest nodes of the user pool (autoscaled), per zone."
  type        = number
  default     = 1
}

variable "user_max_nodes" {
  description = "Most nodes of the user pool (autoscaled), per zone."
  type        = number
  default     = 6
}

variable "user_disk_size_gb" {
  description = "Boot disk of user nodes, in GB: built images live there."
  type        = number
  default     = 500
}

variable "registry_name" {
  description = "Artifact Registry (docker) repository BinderHub pushes built images to."
  type        = string
}

variable "registry_location" {
  description = "Location of the Artifact Registry repository."
  type        = string
  default     = "us-central1"
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}
