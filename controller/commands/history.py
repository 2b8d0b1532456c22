"""stagectl history MODEL: who changed a model's stages and aliases, when, from git (no registry)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import pipeline
from ..changes import Change, diff
from ..errors import ConfigError, Problem
from ..gitops import Checkout, Commit, GitError
from ..reporters import json as json_report
from . import Output


@dataclass(frozen=True, slots=True)
class Entry:
    commit: Commit
    changes: tuple[Change, ...]
    note: str = ""  # set when the file at this commit could not be read


def history(model: str, file: Path, fmt: str, out: Output) -> int:
    checkout = Checkout.find(file)
    # A file deleted from the working tree still has a history; one that never existed is a mistake.
    if not file.exists() and (checkout is None or next(checkout.history(), None) is None):
        raise ConfigError((Problem(str(file), "file not found"),))
    if checkout is None:
        raise GitError(f"{file} is not inside a git repository: history reads the git log of the stages file")
    entries = list(_entries(checkout, model))
    if fmt == "json":
        listed = [{"commit": e.commit.sha, "date": e.commit.date, "author": e.commit.author,
                   "subject": e.commit.subject, "note": e.note or None, "changes": [c.data() for c in e.changes]}
                  for e in entries]
        out.data(json.dumps({**json_report.header(), "model": model, "file": checkout.path,
                             "entries": listed}, indent=2) + "\n")
        return 0
    if not entries:
        out.data(f"No commit to {checkout.path} has changed {model}.\n")
        return 0
    rows = [(e.commit.date[:10], e.commit.sha[:7], e.commit.author.split(" <")[0], e.commit.subject,
             e.note or "; ".join(str(c) for c in e.changes)) for e in entries]
    header = ("DATE", "COMMIT", "AUTHOR", "SUBJECT", "CHANGE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [f"History of {model} in {checkout.path}, newest first:", ""]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    out.data("\n".join(lines) + "\n")
    return 0


def _entries(checkout: Checkout, model: str) -> list[Entry]:
    entries = []
    for revision in pipeline.history(checkout, "history"):
        if not revision.readable:
            if revision.after_text is not None and model in revision.after_text:
                entries.append(Entry(revision.commit, (),
                                     note="(the file did not validate at this commit or its parent)"))
            continue
        changes = tuple(c for c in diff(revision.before, revision.after) if c.model == model)
        if changes:
            entries.append(Entry(revision.commit, changes))
    return entries
