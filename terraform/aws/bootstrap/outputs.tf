output "state_bucket" {
  description = "The S3 bucket holding terraform state."
  value       = aws_s3_bucket.state.id
}

output "lock_table" {
  description = "The DynamoDB table terraform locks state in."
  value       = aws_dynamodb_table.lock.name
}
