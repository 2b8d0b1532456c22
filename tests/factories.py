"""Small in-memory builders of desired and live state, and a simulator of MLflow's stage semantics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller import lifecycle
from controller.model import (
    DeleteAlias,
    DesiredModel,
    DesiredState,
    LiveModel,
    LiveState,
    LiveVersion,
    MarkArchived,
    SetAlias,
    SetLifecycle,
    Stage,
    Step,
    Transition,
)

P, S, A, N = Stage.PRODUCTION, Stage.STAGING, Stage.ARCHIVED, Stage.NONE


def live_model(name: str = "m", stages: Mapping[int, Stage] | None = None,
               aliases: Mapping[str, int] | None = None) -> LiveModel:
    versions = {str(v): LiveVersion(str(v), stage) for v, stage in (stages or {}).items()}
    return LiveModel(name, versions, {a: str(v) for a, v in (aliases or {}).items()})


def want(name: str = "m", production: Iterable[int] | None = None, staging: Iterable[int] | None = None,
         archived: Iterable[int] = (), aliases: Mapping[str, int] | None = None) -> DesiredModel:
    def versions(vs: Iterable[int] | None) -> frozenset[str] | None:
        return None if vs is None else frozenset(str(v) for v in vs)

    return DesiredModel(name, versions(production), versions(staging), versions(archived) or frozenset(),
                        {a: str(v) for a, v in (aliases or {}).items()})


def desired(*models: DesiredModel) -> DesiredState:
    return DesiredState("stages.yaml", tuple(sorted(models, key=lambda m: m.name)))


def live(*models: LiveModel) -> LiveState:
    return LiveState({m.name: m for m in models})


def simulate(model: LiveModel, steps: Iterable[Step], watch: list[int] | None = None) -> LiveModel:
    """Apply steps as MLflow would. `watch` collects the Production count after every write."""
    stages = {v: lv.stage for v, lv in model.versions.items()}
    tags = {v: dict(lv.tags) for v, lv in model.versions.items()}
    aliases = dict(model.aliases)
    model_tags = dict(model.tags)
    for step in steps:
        if isinstance(step, SetAlias):
            aliases[step.alias] = step.version
        elif isinstance(step, DeleteAlias):
            aliases.pop(step.alias, None)
        elif isinstance(step, MarkArchived):
            if step.archived:
                tags[step.version][lifecycle.ARCHIVED_TAG] = "true"
            else:
                tags[step.version].pop(lifecycle.ARCHIVED_TAG, None)
        elif isinstance(step, SetLifecycle):
            model_tags[lifecycle.LIFECYCLE_TAG] = lifecycle.tag_value(step.lifecycle)
        elif isinstance(step, Transition):
            if step.archived_by is not None:
                continue  # performed by its promotion
            if step.archive_existing_versions:
                for v, stage in stages.items():
                    if stage is step.to_stage and v != step.version:
                        stages[v] = Stage.ARCHIVED
            stages[step.version] = step.to_stage
        if watch is not None:
            watch.append(sum(1 for s in stages.values() if s is Stage.PRODUCTION))
    return LiveModel(model.name, {v: LiveVersion(v, s, tags=tags[v]) for v, s in stages.items()}, aliases, model_tags)
