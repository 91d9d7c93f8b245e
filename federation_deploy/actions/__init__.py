"""Actions on the outside world: terraform, helm, publishing traffic weights."""
