"""stagectl: a GitOps promotion controller for the MLflow model registry.

Applications resolve the model they serve with `get_model`; importing this package does not import mlflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .resolve import ResolvedModel, get_model

__version__ = "0.2.0"  # the one place it is written: pyproject.toml reads it

__all__ = ["ResolvedModel", "get_model"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that the command line (which never needs it) starts faster.
    if name in __all__:
        from . import resolve

        return getattr(resolve, name)
    raise AttributeError(f"module 'controller' has no attribute {name!r}")
