"""costgov: prices GPU/AI workloads on Kubernetes and enforces dollar budgets."""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
