"""Where commands write: data to stdout, progress and messages to stderr, reports to files; secrets masked in all."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from . import github, paths, uris


@dataclass
class Output:
    """Where commands write: data to stdout, progress and messages to stderr, secrets masked in both."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    secrets: tuple[str, ...] = field(default_factory=uris.secrets)
    json_report: Path | None = None  # --json-report: the report also goes here as JSON, whatever the format

    @property
    def color(self) -> bool:
        return self.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"

    def data(self, text: str) -> None:
        self.stdout.write(uris.scrub(text, self.secrets))
        self.stdout.flush()

    def info(self, text: str) -> None:
        self.stderr.write(uris.scrub(text, self.secrets) + "\n")
        self.stderr.flush()

    def summary(self, render: Callable[[], str]) -> None:
        """Append a report to the GitHub job summary, when there is one, masked like everything else."""
        github.write_summary(render, self.secrets)

    def also_json(self, render: Callable[[], str]) -> None:
        """The report as JSON to the file named by --json-report (for scripts and the GitHub Action)."""
        if self.json_report is not None:
            self.write_file(self.json_report, render())

    def write_file(self, path: Path, text: str) -> None:
        """A report written to a file the user named: masked like stdout, and never through a symlink."""
        paths.check_write(path)
        path.write_text(uris.scrub(text, self.secrets), encoding="utf-8")

    def also_hide(self, uri: str) -> None:
        self.secrets = tuple(dict.fromkeys(self.secrets + uris.secrets(uri)))
