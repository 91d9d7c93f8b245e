"""Adopting a deploy repository: read its files (never run them), write federation.yaml."""
