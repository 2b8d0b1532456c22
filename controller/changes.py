"""What a change to the stages file declares: per model, per stage and alias, before → after. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from .model import DesiredModel, DesiredState, Plan, Step, version_key

_STAGES = ("production", "staging", "archived")
ABSENT = "—"


@dataclass(frozen=True, slots=True)
class Change:
    model: str
    key: str  # production, staging, archived, "alias NAME", or "model" for a model added or dropped
    before: str
    after: str

    def __str__(self) -> str:
        if self.key == "model":
            return "now managed" if self.after != ABSENT else "no longer managed (the registry is left as it is)"
        return f"{self.key}: {self.before} → {self.after}"


def diff(before: DesiredState | None, after: DesiredState | None) -> tuple[Change, ...]:
    """Every declared difference, models in name order, then stages, then aliases by name."""
    old = {m.name: m for m in before.models} if before else {}
    new = {m.name: m for m in after.models} if after else {}
    changes: list[Change] = []
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name), new.get(name)
        if (was is None) != (now is None):
            changes.append(Change(name, "model", "managed" if was else ABSENT, "managed" if now else ABSENT))
        for key in _STAGES:
            a, b = _stage(was, key), _stage(now, key)
            if a != b:
                changes.append(Change(name, key, a, b))
        aliases_before = dict(was.aliases) if was else {}
        aliases_after = dict(now.aliases) if now else {}
        for alias in sorted(aliases_before.keys() | aliases_after.keys()):
            a, b = aliases_before.get(alias, ABSENT), aliases_after.get(alias, ABSENT)
            if a != b:
                changes.append(Change(name, f"alias {alias}", a, b))
    return tuple(changes)


def _stage(model: DesiredModel | None, key: str) -> str:
    versions = getattr(model, key) if model else None
    if key == "archived" and not versions:
        return ABSENT
    if versions is None:
        return ABSENT
    return ", ".join(sorted(versions, key=version_key)) if versions else "[]"


@dataclass(frozen=True, slots=True)
class Review:
    """A pull request's view: the change to the file, what the registry will undergo, and any drift."""

    base: str  # the git ref the change is compared against
    changes: tuple[Change, ...]
    plan: Plan  # the live registry → the file in the working tree
    drift: tuple[Step, ...]  # the live registry → the file at base: non-empty when they already differ
