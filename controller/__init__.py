"""stagectl: a GitOps promotion controller for the MLflow model registry."""
