# A mybinder.org GKE member: the cluster with a core and an autoscaled user node pool, the
# node service account, and the Artifact Registry repository BinderHub pushes built images to
# with the service account BinderHub pushes as.

locals {
  node_scopes = ["https://www.googleapis.com/auth/cloud-platform"]
}

resource "google_service_account" "nodes" {
  project      = var.project
  account_id   = "${var.cluster_name}-nodes"
  display_name = "Nodes of the ${var.cluster_name} cluster"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/artifactregistry.reader",
  ])

  project = var.project
  role    = each.key
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "this" {
  project  = var.project
  name     = var.cluster_name
  location = var.location

  min_master_version = var.kubernetes_version

  release_channel {
    channel = var.release_channel
  }

  # Node pools are managed below; GKE insists on creating a default pool, which goes at once.
  remove_default_node_pool = true
  initial_node_count       = 1

  workload_identity_config {
    workload_pool = "${var.project}.svc.id.goog"
  }

  network_policy {
    enabled = true
  }

  resource_labels = var.labels

  # google 4.x has no deletion_protection argument (5.0 added it); terraform's own guard keeps
  # a plan from ever destroying the cluster, whichever provider version is pinned.
  lifecycle {
    prevent_destroy = true
  }
}

resource "google_container_node_pool" "core" {
  project  = var.project
  name     = "core"
  location = var.location
  cluster  = google_container_cluster.this.name
  version  = google_container_cluster.this.master_version

  node_count = var.core_node_count

  node_config {
    machine_type    = var.core_machine_type
    service_account = google_service_account.nodes.email
    oauth_scopes    = local.node_scopes
    labels = {
      "hub.jupyter.org/node-purpose" = "core"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  management {
    auto_repair  = true
    auto_upgrade = false
  }
}

resource "google_container_node_pool" "user" {
  project  = var.project
  name     = "user"
  location = var.location
  cluster  = google_container_cluster.this.name
  version  = google_container_cluster.this.master_version

  autoscaling {
    min_node_count = var.user_min_nodes
    max_node_count = var.user_max_nodes
  }

  node_config {
    machine_type    = var.user_machine_type
    disk_size_gb    = var.user_disk_size_gb
    disk_type       = "pd-ssd"
    service_account = google_service_account.nodes.email
    oauth_scopes    = local.node_scopes
    labels = {
      "hub.jupyter.org/node-purpose" = "user"
    }
    taint {
      key    = "hub.jupyter.org_dedicated"
      value  = "user"
      effect = "NO_SCHEDULE"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  management {
    auto_repair  = true
    auto_upgrade = false
  }

  lifecycle {
    # The autoscaler owns the node count.
    ignore_changes = [initial_node_count]
  }
}

resource "google_artifact_registry_repository" "binderhub" {
  project       = var.project
  location      = var.registry_location
  repository_id = var.registry_name
  format        = "DOCKER"
  description   = "Images built by the BinderHub of ${var.cluster_name}"
  labels        = var.labels
}

resource "google_service_account" "binderhub_pusher" {
  project      = var.project
  account_id   = "${var.cluster_name}-image-push"
  display_name = "BinderHub of ${var.cluster_name}: pushes built images"
}

resource "google_artifact_registry_repository_iam_member" "binderhub_pusher" {
  project    = var.project
  location   = google_artifact_registry_repository.binderhub.location
  repository = google_artifact_registry_repository.binderhub.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.binderhub_pusher.email}"
}
