terraform {
  # The one terraform version of the federation, pinned in config/federation.yaml
  # (`terraform.version`); `federation-deploy validate` checks that they agree.
  required_version = "1.11.4"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }

  # State in S3 with locking in DynamoDB; `federation-deploy terraform bootstrap curvenote`
  # creates this bucket and table (stack terraform/aws/bootstrap).
  backend "s3" {
    bucket         = "mybinder-curvenote-terraform-state"
    key            = "curvenote/terraform.tfstate"
    region         = "us-east-2"
    dynamodb_table = "mybinder-curvenote-terraform-locks"
    encrypt        = true
  }
}
