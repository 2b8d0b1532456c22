"""stagectl validate: check stages files offline (no registry, no mlflow import)."""

from __future__ import annotations

import os
from pathlib import Path

from .. import desired, unity
from ..errors import ConfigError, Problem
from . import Output


def validate(files: list[Path], out: Output) -> int:
    """Every problem of every file, reported together."""
    problems: list[Problem] = []
    for file in files:
        try:
            state = desired.load(file)
            if unity.is_registry(os.environ.get("MLFLOW_REGISTRY_URI")):  # the registry it will be applied to
                unity.check(state)
        except ConfigError as e:
            problems += e.problems
            continue
        count = len(state.models)
        out.info(f"{file}: valid ({count} model{'' if count == 1 else 's'})")
    if problems:
        raise ConfigError(tuple(problems))
    return 0
