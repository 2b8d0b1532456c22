"""stagectl propose: new versions and ready staging versions become branches for pull requests; git only."""

from __future__ import annotations

from pathlib import Path

from .. import proposer, uris
from ..reporters import proposal as report
from . import Output


def propose_command(models: list[str], file: Path, given: uris.Given, fmt: str, dry_run: bool, out: Output) -> int:
    result = proposer.run(models, file, given, dry_run, out)
    out.data(report.render(result, fmt))
    out.also_json(lambda: report.render(result, "json"))
    return 1 if result.unreadable else 0
