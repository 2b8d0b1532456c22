"""Lifecycle modes: how a declaration becomes steps, and how a stage is read back, with stages, aliases or both.

The one place that knows what `production`, `staging` and `archived` mean in the registry. The planner asks
it for a model's lifecycle steps; readers (get_model, resolve, cleanup-report, export) ask it which versions
are in a stage, by the lifecycle the registered model records.
"""

from __future__ import annotations

from collections.abc import Mapping

from .model import (
    DeleteAlias,
    DesiredModel,
    Lifecycle,
    LiveModel,
    LiveVersion,
    MarkArchived,
    Mode,
    Position,
    SetAlias,
    SetLifecycle,
    Stage,
    Step,
    Transition,
    version_key,
)

LIFECYCLE_TAG = "stagectl.lifecycle"  # on the registered model: its mode and lifecycle aliases
ARCHIVED_TAG = "stagectl.archived"  # on a version archived in aliases mode
_SERVING = (Stage.PRODUCTION, Stage.STAGING)


def tag_value(lifecycle: Lifecycle) -> str:
    """The lifecycle as recorded: one tag, so one request, and readable in the MLflow UI."""
    return f"{lifecycle.mode}; production={lifecycle.production_alias}; staging={lifecycle.staging_alias}"


def recorded(tags: Mapping[str, str]) -> Lifecycle | None:
    """The lifecycle a registered model records; None when it records none (it follows stages)."""
    value = tags.get(LIFECYCLE_TAG)
    if value is None:
        return None
    mode, *rest = [part.strip() for part in value.split(";")]
    fields = dict(part.split("=", 1) for part in rest if "=" in part)
    try:
        return Lifecycle(Mode(mode), fields.get("production", "production"), fields.get("staging", "staging"))
    except ValueError:
        return None  # written by a later stagectl, or by hand: read as stages, and the next apply rewrites it


def of(model: LiveModel) -> Lifecycle:
    return recorded(model.tags) or Lifecycle()


def is_archived(version: LiveVersion) -> bool:
    return version.tags.get(ARCHIVED_TAG) == "true"


def versions_in(model: LiveModel, stage: Stage, lifecycle: Lifecycle | None = None) -> frozenset[str]:
    """The versions in a stage, as the model's lifecycle says: by alias in aliases and both modes.

    Archived is the versions carrying the archived tag, and in stages and both modes those in Archived.
    """
    lifecycle = lifecycle or of(model)
    if stage is Stage.ARCHIVED:
        return marked(model) | (model.in_stage(stage) if lifecycle.stages else frozenset())
    if not lifecycle.aliases:
        return model.in_stage(stage)
    alias = lifecycle.alias(stage)
    version = model.aliases.get(alias) if alias else None
    return frozenset({version}) if version is not None and version in model.versions else frozenset()


def in_staging(model: LiveModel, version: str, lifecycle: Lifecycle) -> bool:
    """Whether a version is in staging now, by either mechanism the lifecycle applies."""
    by_stage = lifecycle.stages and model.versions[version].stage is Stage.STAGING
    return by_stage or (lifecycle.aliases and model.aliases.get(lifecycle.staging_alias) == version)


def marked(model: LiveModel) -> frozenset[str]:
    """The versions carrying the archived tag."""
    return frozenset(v for v, lv in model.versions.items() if is_archived(lv))


def conflicts(want: DesiredModel, have: LiveModel) -> list[tuple[Position, str]]:
    """Why the lifecycle aliases cannot be applied as declared: the production alias would point at nothing."""
    lifecycle = want.lifecycle
    if not lifecycle.aliases or want.production is not None:
        return []
    current = have.aliases.get(lifecycle.production_alias)
    if current is None or current not in want.archived:
        return []
    at = want.version_positions.get(current, want.position)
    return [(at, f"archives version {current}, which its production alias '{lifecycle.production_alias}' points "
                 "at; declare production: N to move the alias to N first")]


def _archived_by_file(want: DesiredModel, have: LiveModel) -> frozenset[str]:
    """The versions this declaration leaves archived: listed, or left by a lifecycle alias and kept by none."""
    declared = want.declared()
    kept = set().union(*declared.values())
    left = set()
    for stage in _SERVING:
        alias = want.lifecycle.alias(stage)
        current = have.aliases.get(alias) if alias else None
        if current is None:
            continue
        if stage not in declared:
            kept.add(current)  # not declared: left where it is
        elif current not in declared[stage]:
            left.add(current)
    return frozenset(set(want.archived) | (left - kept)) - frozenset().union(*declared.values())


def steps(want: DesiredModel, have: LiveModel, stage_steps: list[Step]) -> list[Step]:
    """The model's steps in this lifecycle, given the steps that apply the declaration as MLflow stages.

    Aliases move first, so the production alias never points at nothing nor at a version the file
    archives. The lifecycle is recorded once its aliases are in place and before stages are emptied, so a
    reader following the recorded lifecycle always finds a version.
    """
    lifecycle = want.lifecycle
    before = recorded(have.tags)
    record: list[Step] = []
    if not _same(before or Lifecycle(), lifecycle):
        record = [SetLifecycle(want.name, lifecycle, before)]
    serving = frozenset().union(*want.declared().values())
    unmark: list[Step] = [MarkArchived(want.name, v, archived=False)
                          for v in sorted(serving, key=version_key) if is_archived(have.versions[v])]
    if not lifecycle.aliases:
        return record + unmark + stage_steps
    moves: list[SetAlias | DeleteAlias] = []
    for stage, versions in want.declared().items():
        alias = lifecycle.alias(stage)
        assert alias is not None
        current = have.aliases.get(alias)
        target = min(versions, key=version_key) if versions else None  # the loader allows one at most
        if target is not None and current != target:
            moves.append(SetAlias(want.name, alias, target, current, stands_for=stage))
        elif target is None and current is not None:
            moves.append(DeleteAlias(want.name, alias, current))
    moves.sort(key=lambda s: s.alias != lifecycle.production_alias)
    archived = _archived_by_file(want, have)
    undeclared = [lifecycle.alias(stage) for stage in _SERVING if stage not in want.declared()]
    removals: list[Step] = [DeleteAlias(want.name, alias, have.aliases[alias]) for alias in undeclared
                            if alias is not None and have.aliases.get(alias) in archived]
    if lifecycle.stages:
        return [*unmark, *moves, *record, *removals, *stage_steps]
    marks: list[Step] = [MarkArchived(want.name, v) for v in sorted(archived, key=version_key)
                         if not is_archived(have.versions[v])]
    # Completing the move off stages: the versions leave Staging and Production, so that a reader still
    # asking for models:/NAME/Production fails loudly rather than serving a version nobody declared.
    leave: list[Step] = [Transition(want.name, v, lv.stage, Stage.NONE)
                         for v, lv in sorted(have.versions.items(), key=lambda kv: version_key(kv[0]))
                         if lv.stage in _SERVING]
    return [*unmark, *moves, *record, *removals, *marks, *leave]


def _same(recorded: Lifecycle, declared: Lifecycle) -> bool:
    """Whether the record needs no rewrite: with stages, the alias names mean nothing."""
    return recorded == declared or recorded.mode is declared.mode is Mode.STAGES


def promotions(want: DesiredModel, model_steps: list[Step]) -> list[str]:
    """The versions these steps put into production (by stage, alias or both), each once."""
    found: dict[str, None] = {}
    for step in model_steps:
        if ((isinstance(step, Transition) and step.to_stage is Stage.PRODUCTION)
                or (isinstance(step, SetAlias) and want.lifecycle.aliases
                    and step.alias == want.lifecycle.production_alias)):
            found.setdefault(step.version)
    return list(found)
