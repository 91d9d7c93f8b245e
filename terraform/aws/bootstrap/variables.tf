variable "region" {
  description = "AWS region of the state bucket and the lock table (the backend's `region`)."
  type        = string
}

variable "state_bucket" {
  description = "Name of the S3 bucket holding terraform state (the backend's `bucket`)."
  type        = string
}

variable "lock_table" {
  description = "Name of the DynamoDB table for state locking (the backend's `dynamodb_table`)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default = {
    "managed-by" = "federation-deploy"
  }
}
