"""What a change to the stages file declares, before → after: file-wide settings, then per model every stage,
alias and policy key. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .model import DesiredModel, DesiredState, Lifecycle, Mode, Plan, Policy, Step, version_key

_STAGES = ("production", "staging", "archived")
# where, not what:
_WHERE_ONLY = frozenset({"name", "position", "version_positions", "alias_positions", "lifecycle_position"})
_FILE_WHERE_ONLY = frozenset({"path", "models", "defaults", "only"})  # "only": a run's --model, not the file
_FILE_KEYS = {"tracking_uri": "registry.tracking_uri", "flavor": "registry.flavor",
              "max_changes": "defaults.policy.max_changes"}
ABSENT = "—"  # how text shows a key the file does not declare
FILE = "(file)"  # how a file-wide change is shown where a model name would be

T = TypeVar("T")

# A stage's versions (a tuple, () for an emptied stage), an alias's version, "managed" for a model, any other
# setting as text, or None where the file does not declare it.
Value = tuple[str, ...] | str | None


@dataclass(frozen=True, slots=True)
class Change:
    model: str | None  # None: a file-wide setting (registry, defaults)
    key: str  # production, staging, archived, alias, "policy.KEY", "model" (added or dropped), or a file key
    before: Value
    after: Value
    alias: str | None = None  # the alias, when key is "alias"

    def __str__(self) -> str:
        if self.key == "model":
            return "now managed" if self.after is not None else "no longer managed (the registry is left as it is)"
        name = f"alias {self.alias}" if self.key == "alias" else self.key
        return f"{name}: {_text(self.before)} → {_text(self.after)}"

    def data(self) -> dict[str, Any]:
        """For JSON: absent values are null, a stage's versions a list, the alias a field of its own."""
        found: dict[str, Any] = {"model": self.model, "key": self.key}
        if self.key == "alias":
            found["alias"] = self.alias
        return {**found, "before": _json(self.before), "after": _json(self.after)}

    @property
    def where(self) -> str:
        return FILE if self.model is None else self.model


def diff(before: DesiredState | None, after: DesiredState | None) -> tuple[Change, ...]:
    """Every declared difference: file-wide settings first, then models in name order, each with its stages,
    aliases by name, and policy keys. Policy keys and file settings are found by their fields, so a key
    added to Policy or DesiredState shows up here without code of its own."""
    changes = list(_file_changes(before, after))
    old = {m.name: m for m in before.models} if before else {}
    new = {m.name: m for m in after.models} if after else {}
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name), new.get(name)
        if (was is None) != (now is None):
            changes.append(Change(name, "model", "managed" if was else None, "managed" if now else None))
        changes += _model_changes(name, was, now)
    return tuple(changes)


def last_changed(revisions: Iterable[tuple[T, DesiredState | None, DesiredState | None]],
                 names: Iterable[str]) -> dict[str, T]:
    """For each named model, the newest revision (of `revisions`, newest first) that changed its declaration.

    One pass over the history for all models; it stops as soon as every model is found.
    """
    wanted, found = set(names), dict[str, T]()
    for revision, before, after in revisions:
        if wanted <= found.keys():
            break
        for change in diff(before, after):
            if change.model in wanted and change.model not in found:
                found[change.model] = revision
    return found


def _file_changes(before: DesiredState | None, after: DesiredState | None) -> list[Change]:
    changes = []
    for f in dataclasses.fields(DesiredState):
        if f.name in _FILE_WHERE_ONLY:
            continue
        a, b = (_show(getattr(s, f.name)) if s else None for s in (before, after))
        if a != b:
            changes.append(Change(None, _FILE_KEYS.get(f.name, f.name), a, b))
    changes += _policy_changes(None, "defaults.policy.", before.defaults if before else None,
                               after.defaults if after else None)
    return changes


def _model_changes(name: str, was: DesiredModel | None, now: DesiredModel | None) -> list[Change]:
    changes: list[Change] = []
    for f in dataclasses.fields(DesiredModel):
        if f.name in _WHERE_ONLY:
            continue
        if f.name in _STAGES:
            a, b = _stage(was, f.name), _stage(now, f.name)
            if a != b:
                changes.append(Change(name, f.name, a, b))
        elif f.name == "aliases":
            aliases_before = dict(was.aliases) if was else {}
            aliases_after = dict(now.aliases) if now else {}
            for alias in sorted(aliases_before.keys() | aliases_after.keys()):
                a_alias, b_alias = aliases_before.get(alias), aliases_after.get(alias)
                if a_alias != b_alias:
                    changes.append(Change(name, "alias", a_alias, b_alias, alias=alias))
        elif f.name == "policy":
            if now is not None:  # a model no longer managed has no policy left to report
                changes += _policy_changes(name, "policy.", was.policy if was else None, now.policy)
        else:
            a_value, b_value = (_show(getattr(m, f.name)) if m else None for m in (was, now))
            if a_value != b_value:
                changes.append(Change(name, f.name, a_value, b_value))
    return changes


def _policy_changes(model: str | None, prefix: str, was: Policy | None, now: Policy | None) -> list[Change]:
    changes = []
    for f in dataclasses.fields(now or was or Policy):
        a, b = (_show(getattr(p, f.name, None)) if p else None for p in (was, now))
        if a != b:
            changes.append(Change(model, prefix + f.name, a, b))
    return changes


def _show(value: object) -> str | None:
    """A setting as text; None where nothing is set."""
    if value is None or (isinstance(value, (Mapping, frozenset, tuple)) and not value):
        return None
    if isinstance(value, Lifecycle):
        if value.mode is Mode.STAGES:
            return None  # the default: the alias names mean nothing with stages
        return f"{value.mode} (production alias {value.production_alias}, staging alias {value.staging_alias})"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    if isinstance(value, (frozenset, tuple)):
        return ", ".join(sorted(map(str, value)))
    return str(value)


def _stage(model: DesiredModel | None, key: str) -> tuple[str, ...] | None:
    versions = getattr(model, key) if model else None
    if versions is None or (key == "archived" and not versions):
        return None  # archived: [] declares nothing (versions not listed are left as they are)
    return tuple(sorted(versions, key=version_key))


def _text(value: Value) -> str:
    if value is None:
        return ABSENT
    if isinstance(value, tuple):
        return ", ".join(value) if value else "[]"
    return value


def _json(value: Value) -> list[str] | str | None:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True, slots=True)
class Review:
    """A pull request's view: the change to the file, what the registry will undergo, and any drift."""

    base: str  # the git ref the change is compared against
    changes: tuple[Change, ...]
    plan: Plan  # the live registry → the file in the working tree
    drift: tuple[Step, ...]  # the live registry → the file at base: non-empty when they already differ
