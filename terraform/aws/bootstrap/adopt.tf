# Adopting a state bucket or lock table that exists already, e.g. made from another machine
# whose local bootstrap state is not here. `federation-deploy terraform bootstrap` sets these
# only after an apply failed because the object exists, then applies again: the object is
# imported into the state instead of created.

variable "adopt_bucket" {
  description = "Import the existing state bucket instead of creating it."
  type        = bool
  default     = false
}

variable "adopt_table" {
  description = "Import the existing lock table instead of creating it."
  type        = bool
  default     = false
}

import {
  for_each = var.adopt_bucket ? toset([var.state_bucket]) : toset([])
  to       = aws_s3_bucket.state
  id       = each.value
}

import {
  for_each = var.adopt_table ? toset([var.lock_table]) : toset([])
  to       = aws_dynamodb_table.lock
  id       = each.value
}
