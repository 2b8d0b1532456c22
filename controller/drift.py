"""Tell a merged change not yet applied from a change made outside git, using apply's provenance. Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .changes import Change, diff
from .model import DesiredModel, DesiredState, LiveModel, Stage, Step
from .planner import plan_model

COMMIT_TAG = "stagectl.commit"


class Kind(enum.StrEnum):
    IN_SYNC = "in_sync"
    PENDING = "pending"  # the file declares something stagectl has not applied yet
    DRIFTED = "drifted"  # the registry no longer matches what stagectl last applied: changed outside git
    UNKNOWN = "unknown"  # it differs, and no provenance says what stagectl last applied


@dataclass(frozen=True, slots=True)
class ModelDrift:
    model: str
    kind: Kind
    applied_commit: str | None
    restore: tuple[Step, ...] = ()  # DRIFTED: steps back to what was applied; UNKNOWN: steps to the file
    pending: tuple[Change, ...] = ()  # declared since the applied commit

    @property
    def drifted(self) -> bool:
        return self.kind in (Kind.DRIFTED, Kind.UNKNOWN)


def last_applied(live: LiveModel, history: list[str]) -> str | None:
    """The newest commit (in `history`, newest first) that some version's provenance tag names."""
    stamped = {v.tags.get(COMMIT_TAG) for v in live.versions.values()} - {None}
    return next((sha for sha in history if sha in stamped), None)


def classify(now: DesiredModel, applied: DesiredModel | None, applied_commit: str | None,
             live: LiveModel) -> ModelDrift:
    """`applied` is the model as declared at `applied_commit` (None when unknown)."""
    if applied is None:
        steps = tuple(plan_model(now, live))
        return ModelDrift(now.name, Kind.UNKNOWN if steps else Kind.IN_SYNC, applied_commit, restore=steps)
    restore = tuple(plan_model(applied, live))
    pending = tuple(diff(DesiredState("", (applied,)), DesiredState("", (now,))))
    kind = Kind.DRIFTED if restore else Kind.PENDING if plan_model(now, live) else Kind.IN_SYNC
    return ModelDrift(now.name, kind, applied_commit, restore, pending if kind is not Kind.IN_SYNC else ())


def proposal(now: DesiredModel, live: LiveModel) -> tuple[dict[str, list[str]], dict[str, str]]:
    """What the model's entry would declare to accept the live registry: stage lists and alias targets,
    for the keys the entry already declares."""
    stages: dict[str, list[str]] = {}
    for stage, key in ((Stage.PRODUCTION, "production"), (Stage.STAGING, "staging")):
        if getattr(now, key) is not None:
            stages[key] = sorted(live.in_stage(stage), key=int)
    still_archived = sorted((v for v in now.archived if live.versions.get(v) and
                             live.versions[v].stage is Stage.ARCHIVED), key=int)
    if still_archived != sorted(now.archived, key=int):
        stages["archived"] = still_archived
    aliases = {a: live.aliases[a] for a in now.aliases if a in live.aliases and live.aliases[a] != now.aliases[a]}
    return stages, aliases
