"""What stagectl adds when it runs in GitHub Actions: the job's step summary and annotations on the diff."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

from . import uris
from .errors import Problem


def active(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def write_summary(render: Callable[[], str], secrets: tuple[str, ...] | None = None,
                  environ: Mapping[str, str] = os.environ) -> None:
    """Append a report to the job summary page, when GitHub gives one (rendered only then), secrets masked
    as on stdout: the page is shown to everyone who can read the repository's Actions runs."""
    path = environ.get("GITHUB_STEP_SUMMARY")
    if active(environ) and path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(uris.scrub(render().rstrip("\n"), secrets) + "\n\n")


def error_annotations(problems: Iterable[Problem]) -> str:
    """Workflow commands that show each problem on its line of the pull request's diff."""
    lines = []
    for p in problems:
        where = f"file={_property(p.file)}"
        if p.line is not None:
            where += f",line={p.line},col={p.col or 1}"
        lines.append(f"::error {where}::{_data(p.message)}")
    return "".join(line + "\n" for line in lines)


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
