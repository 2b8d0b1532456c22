"""stagectl cleanup-report: archived versions that nothing needs any more. Reports only; never deletes."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from .. import desired, uris
from ..cleanup import Candidate, candidates, parse_duration
from ..errors import ConfigError, Problem
from ..pipeline import connect
from ..reporters import json as json_report
from . import Output


def cleanup_report(models: list[str], file: Path, given: uris.Given, older_than: str, fmt: str,
                   out: Output) -> int:
    try:
        seconds = parse_duration(older_than)
    except ValueError as e:
        raise ConfigError((Problem("--older-than", str(e)),)) from None
    state = desired.load(file) if file.exists() else None
    registry = connect(state, given, out)
    now_ms = int(time.time() * 1000)
    found = candidates(registry.read(models or None), state, now_ms, seconds)
    source = str(file) if state else "no stages file"
    if fmt == "json":
        out.data(json.dumps({**json_report.header(), "tracking_uri": registry.display_uri,
                             "older_than": older_than,
                             "stages_file": str(file) if state else None, "candidates": [
                                 {"model": c.model, "version": c.version, "run_id": c.run_id,
                                  "created": _iso(c.created_ms), "last_updated": _iso(c.archived_ms),
                                  "idle_days": _days(now_ms, c.archived_ms)} for c in found]}, indent=2) + "\n")
    else:
        out.data(_render(found, registry.display_uri, older_than, source, now_ms, markdown=fmt == "markdown"))
    return 0


def _render(found: tuple[Candidate, ...], uri: str, older_than: str, source: str, now_ms: int,
            *, markdown: bool) -> str:
    title = (f"{len(found)} archived version{'' if len(found) == 1 else 's'} could be deleted: no alias points "
             f"at them, {source} does not mention them, and they have not changed for over {older_than}.")
    header = ("Model", "Version", "Run", "Created", "Last updated", "Idle days")
    rows = [(c.model, c.version, c.run_id or "—", _iso(c.created_ms)[:10], _iso(c.archived_ms)[:10],
             str(_days(now_ms, c.archived_ms))) for c in found]
    if markdown:
        lines = ["### stagectl cleanup report", "", f"Registry: `{uri}`", "", title, "",
                 "stagectl never deletes; this is a list for a person to act on.", ""]
        if rows:
            lines += ["| " + " | ".join(header) + " |", "|---|--:|---|---|---|--:|"]
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    lines = [f"Registry: {uri}", title]
    if rows:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines.append("")
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                  for row in [header, *rows]]
    return "\n".join(lines) + "\n"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _days(now_ms: int, then_ms: int) -> int:
    return (now_ms - then_ms) // 86_400_000
