"""Helm values: layered rendering with provenance, secrets and their censoring, manifests."""
