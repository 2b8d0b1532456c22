"""The exception tree: every failure a user can cause or meet, each mapped to exit code 1 by the CLI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, located in its file (line and column are 1-based)."""

    file: str
    message: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col or 1}: {self.message}"


class ControllerError(Exception):
    """An expected failure: the CLI prints its message (no traceback) and exits 1."""

    exit_code = 1


class ConfigError(ControllerError):
    """stages.yaml is unreadable, invalid, or disagrees with what exists in the registry."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RegistryError(ControllerError):
    """The registry could not be reached, or refused or failed a request."""

    def __init__(self, message: str, *, code: str | None = None, transient: bool = False) -> None:
        self.code = code
        self.transient = transient
        super().__init__(message)


class ResolveError(ControllerError):
    """An application asked for a model that cannot be resolved to exactly one trustworthy version."""


class AmbiguousModelError(ResolveError):
    """No version, or more than one, is in the stage asked for."""


class UnreviewedModelError(ResolveError):
    """The registry disagrees with the reviewed stages file: serving it would serve an unreviewed change."""


class GateError(ControllerError):
    """The plan violates a promotion gate: nothing is written."""
