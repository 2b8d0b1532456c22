"""stagectl export: a stages.yaml describing the live registry, the way to start managing it."""

from __future__ import annotations

from pathlib import Path

from .. import paths, uris
from ..pipeline import from_registry
from . import Output


def export(models: list[str], given: uris.Given, output: Path | None, out: Output) -> int:
    if output is not None:
        paths.check_write(output)  # before any request: the answer would be refused anyway
    live, text = from_registry(models, given, out)
    if output is None:
        out.data(text)
    else:
        out.write_file(output, text)
        out.info(f"wrote {output}: {len(live.models)} model{'' if len(live.models) == 1 else 's'}")
    return 0
