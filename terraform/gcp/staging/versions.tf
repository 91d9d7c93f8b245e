terraform {
  # The one terraform version of the federation, pinned in config/federation.yaml
  # (`terraform.version`); `federation-deploy validate` checks that they agree.
  required_version = "1.11.4"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "4.63.0"
    }
  }

  backend "gcs" {
    bucket = "binderhub-288415-terraform-state"
    prefix = "staging"
  }
}
