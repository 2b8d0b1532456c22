"""Tell a merged change not yet applied from a change made outside git, using apply's provenance. Pure."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from . import lifecycle
from .changes import Change, diff
from .model import DesiredModel, DesiredState, LiveModel, Stage, Step
from .planner import plan_model

APPLIED_TAG = "stagectl.applied_commit"
COMMIT_TAG = "stagectl.commit"  # older stagectl recorded the commit checked out here


class Kind(enum.StrEnum):
    IN_SYNC = "in_sync"
    PENDING = "pending"  # the registry matches the file as an earlier commit declared it: a merge not yet applied
    DRIFTED = "drifted"  # it matches no declaration since stagectl last applied: changed outside git
    UNKNOWN = "unknown"  # it differs, matches no declaration in the history, and no apply by stagectl is recorded
    ELSEWHERE = "managed_elsewhere"  # it differs, and another stages file manages the model: it applied its own


@dataclass(frozen=True, slots=True)
class ModelDrift:
    model: str
    kind: Kind
    applied_commit: str | None  # the newest commit of the file at or before stagectl's last apply of the model
    restore: tuple[Step, ...] = ()  # DRIFTED, UNKNOWN: the steps that bring the registry back to the file
    pending: tuple[Change, ...] = ()  # PENDING: declared since the commit the registry matches
    matches_commit: str | None = None  # PENDING: the newest commit whose declaration the registry matches
    owner: str | None = None  # ELSEWHERE: the stages file that manages the model

    @property
    def drifted(self) -> bool:
        return self.kind in (Kind.DRIFTED, Kind.UNKNOWN, Kind.ELSEWHERE)


def applied_commits(live: LiveModel) -> set[str]:
    """The commits stagectl recorded having checked out when it wrote this model's versions."""
    found = {v.tags.get(APPLIED_TAG) or v.tags.get(COMMIT_TAG) for v in live.versions.values()}
    return {sha for sha in found if sha}


def classify(now: DesiredModel, live: LiveModel, declared: Sequence[tuple[str, DesiredModel | None]],
             applied_commit: str | None, owner: str | None = None) -> ModelDrift:
    """`declared`: the model as each commit that changed the file declared it, newest first, back to
    `applied_commit` included (the whole history when no apply is recorded).

    A registry that matches the file now is in sync, whatever its tags say. One that matches what a commit since
    the last apply declared is behind a merge (an accepted proposal, an adopted export): pending. One that
    another stages file manages (`owner` is this one) differs because that file says so: nobody is to blame.
    One that matches none of them was changed outside git.
    """
    restore = tuple(plan_model(now, live))
    if not restore:
        return ModelDrift(now.name, Kind.IN_SYNC, applied_commit)
    if owner is not None and live.owner is not None and live.owner != owner:
        return ModelDrift(now.name, Kind.ELSEWHERE, applied_commit, restore, owner=live.owner)
    for sha, then in declared:
        if then is not None and _matches(then, live):
            return ModelDrift(now.name, Kind.PENDING, applied_commit,
                              pending=diff(DesiredState("", (then,)), DesiredState("", (now,))), matches_commit=sha)
    return ModelDrift(now.name, Kind.DRIFTED if applied_commit else Kind.UNKNOWN, applied_commit, restore)


def _matches(declared: DesiredModel, live: LiveModel) -> bool:
    named = set(declared.archived).union(declared.aliases.values(), *declared.declared().values())
    if not named <= live.versions.keys():
        return False  # it names a version the registry no longer has
    return not plan_model(declared, live)


def proposal(now: DesiredModel, live: LiveModel) -> tuple[dict[str, list[str]], dict[str, str]]:
    """What the model's entry would declare to accept the live registry: stage lists and alias targets,
    for the keys the entry already declares."""
    stages: dict[str, list[str]] = {}
    for stage, key in ((Stage.PRODUCTION, "production"), (Stage.STAGING, "staging")):
        if getattr(now, key) is not None:
            stages[key] = sorted(lifecycle.versions_in(live, stage, now.lifecycle), key=int)
    archived = lifecycle.versions_in(live, Stage.ARCHIVED, now.lifecycle)
    still_archived = sorted((v for v in now.archived if v in archived), key=int)
    if still_archived != sorted(now.archived, key=int):
        stages["archived"] = still_archived
    aliases = {a: live.aliases[a] for a in now.aliases if a in live.aliases and live.aliases[a] != now.aliases[a]}
    return stages, aliases
