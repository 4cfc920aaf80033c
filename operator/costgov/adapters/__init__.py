"""Thin adapters between the outside world (files, Prometheus, Kubernetes) and the domain."""
