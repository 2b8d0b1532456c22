"""stagectl: a GitOps promotion controller for the MLflow model registry.

Applications resolve the model they serve with `get_model`; importing this package does not import mlflow.
"""

from .resolve import ResolvedModel, get_model

__all__ = ["ResolvedModel", "get_model"]
