"""Use-cases that join adapters and the domain (estimate manifests, render reports)."""
