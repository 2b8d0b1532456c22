"""stagectl validate: check stages.yaml offline (no registry, no mlflow import)."""

from __future__ import annotations

from pathlib import Path

from .. import desired
from . import Output


def validate(file: Path, out: Output) -> int:
    state = desired.load(file)
    count = len(state.models)
    out.info(f"{file}: valid ({count} model{'' if count == 1 else 's'})")
    return 0
