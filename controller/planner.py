"""Pure planning: check desired state against live state, and compute the ordered steps between them."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Collection, Mapping

from . import gates, lifecycle
from .errors import Problem
from .model import (
    AliasWarning,
    Check,
    DeleteAlias,
    DesiredModel,
    DesiredState,
    Lifecycle,
    LiveModel,
    LiveState,
    MarkArchived,
    Plan,
    Position,
    SetAlias,
    Stage,
    Step,
    Transition,
    version_key,
)

_SERVING = (Stage.PRODUCTION, Stage.STAGING)


def check(desired: DesiredState, live: LiveState, known: Collection[str] = ()) -> tuple[Problem, ...]:
    """What stages.yaml names that the registry does not have: missing models, missing or unready versions."""
    problems = [Problem(desired.path, f"model '{model.name}' {reason}", at.line, at.col)
                for model in desired.models
                for at, reason in check_model(model, live.models.get(model.name), known, model.name in live.hidden)]
    return tuple(sorted(problems, key=lambda p: (p.line or 0, p.col or 0)))


def check_model(model: DesiredModel, have: LiveModel | None, known: Collection[str] = (),
                hidden: bool = False) -> list[tuple[Position, str]]:
    """Why the registry cannot take this model's declaration now, each reason where the file says it.

    `known`: model names the registry has, to suggest the closest for a misspelt one. `hidden`: the model exists,
    but these credentials may not read it.
    """
    if have is None:
        return [(model.position, absent(model.name, known, hidden))]
    reasons = []
    must_be_ready = set(model.aliases.values()).union(*model.declared().values())
    for version, at in model.version_positions.items():
        found = have.versions.get(version)
        if found is None:
            known = sorted(have.versions, key=version_key)
            reasons.append((at, f"has no version {version}" + (
                f" (it has {', '.join(known)})" if known else " (it has no versions)")))
        elif version in must_be_ready and found.status != "READY":
            reasons.append((at, f"version {version} is {found.status}, not READY"))
    return reasons or lifecycle.conflicts(model, have)


def absent(name: str, known: Collection[str] = (), hidden: bool = False) -> str:
    """Why a model the file names is not in the registry as read."""
    if hidden:
        return ("may not be read with these credentials (the registry answered PERMISSION_DENIED for it): give "
                "them read access to the model (READ, in MLflow's basic auth), or take it out of this file")
    close = _closest(name, known)
    return "does not exist in the registry" + (f"; did you mean '{close}'?" if close else "")


def _closest(name: str, known: Collection[str]) -> str | None:
    """The registry name `name` is most likely a misspelling of. Registry names often share long prefixes
    (team-, project-), which alone make unrelated names look alike: what differs after the shared prefix must
    look alike too."""
    def likeness(other: str) -> tuple[float, float]:
        pairs = zip(name, other, strict=False)  # up to the shorter name
        shared = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(name), len(other)))
        rest = difflib.SequenceMatcher(None, name[shared:], other[shared:]).ratio()
        return difflib.SequenceMatcher(None, name, other).ratio(), rest

    scored = [(likeness(other), other) for other in known if other != name]
    fits = [(whole, other) for (whole, rest), other in scored if whole >= 0.8 and rest >= 0.5]
    return max(fits)[1] if fits else None


def plan(
    desired: DesiredState,
    live: LiveState,
    tracking_uri: str,
    *,
    staged_before: Mapping[str, Mapping[str, str]] | None = None,
    max_changes: int | None = None,
    owner: str | None = None,
    adopt: frozenset[str] = frozenset(),
    known: Collection[str] = (),
    evidence: gates.Evidence | None = None,
) -> Plan:
    """The steps that make the live registry match the file, with the gates applied to them.

    A model the registry cannot take as declared (check_model) is held, alone: its reasons are in Plan.held.
    `staged_before` maps model → version → where it was declared in staging before (a ref or commit), for
    promote_from; `max_changes` overrides the file's.
    `owner` names this stages file: a model another file manages is changed only when listed in `adopt`.
    """
    steps: list[Step] = []
    checks: list[Check] = []
    blocked: dict[str, tuple[Step, ...]] = {}
    frozen: dict[str, str] = {}
    held: dict[str, str] = {}
    for model in desired.models:
        reasons = check_model(model, live.models.get(model.name), known, model.name in live.hidden)
        if reasons:
            held[model.name] = "; ".join(f"{reason} ({desired.path}:{at.line}:{at.col})" for at, reason in reasons)
            continue
        have = live.models[model.name]
        model_steps = plan_model(model, have)
        if model.policy.frozen and model_steps:
            blocked[model.name] = tuple(model_steps)
            frozen[model.name] = model.policy.frozen
            continue
        if owner is not None and model_steps:
            checks += _ownership(model.name, have.owner, owner, adopt)
        checks += _gates(model, have, model_steps, (staged_before or {}).get(model.name, {}),
                         evidence or gates.Evidence())
        steps += model_steps
    limit = max_changes or desired.max_changes
    if limit is not None and len(steps) > limit:
        checks.append(Check("max_changes", None, None, False,
                            f"{len(steps)} steps exceed max_changes {limit} (raise it with --max-changes)"))
    warnings = alias_warnings(steps, {m.name: live.models[m.name] for m in desired.models
                                      if m.name in live.models and m.name not in held},
                              {m.name: m.lifecycle for m in desired.models})
    return Plan(tracking_uri, tuple(steps), tuple(checks), blocked, frozen, held, warnings, targets=desired.only)


def alias_warnings(steps: list[Step], live: Mapping[str, LiveModel],
                   lifecycles: Mapping[str, Lifecycle] | None = None) -> tuple[AliasWarning, ...]:
    """Aliases that, once `steps` ran, would point at an archived version, or (by stages) one in no stage."""
    lifecycles = lifecycles or {}
    stages = {name: {v: lv.stage for v, lv in model.versions.items()} for name, model in live.items()}
    marked = {name: set(lifecycle.marked(model)) for name, model in live.items()}
    aliases = {name: dict(model.aliases) for name, model in live.items()}
    moved: set[tuple[str, str]] = set()
    for step in steps:
        if isinstance(step, Transition):
            stages[step.model][step.version] = step.to_stage
            moved.add((step.model, step.version))
        elif isinstance(step, SetAlias):
            aliases[step.model][step.alias] = step.version
        elif isinstance(step, MarkArchived):
            (marked[step.model].add if step.archived else marked[step.model].discard)(step.version)
            moved.add((step.model, step.version))
        elif isinstance(step, DeleteAlias):
            aliases[step.model].pop(step.alias, None)
    found = []
    for name in sorted(live):
        by_stages = lifecycles.get(name, Lifecycle()).stages
        for alias, version in sorted(aliases[name].items()):
            stage = Stage.ARCHIVED if version in marked[name] else stages[name].get(version)
            if stage is Stage.ARCHIVED or (by_stages and stage is Stage.NONE):
                found.append(AliasWarning(name, alias, version, stage, (name, version) in moved))
    return tuple(found)


def _ownership(model: str, current: str | None, owner: str, adopt: frozenset[str]) -> list[Check]:
    if current is None or current == owner:
        return []
    if model in adopt:
        return [Check("owner", model, None, True, f"taken over from {current} (--adopt)")]
    return [Check("owner", model, None, False,
                  f"managed by another stages file: {current}; to take it over from there, apply with --adopt {model}")]


def _gates(want: DesiredModel, have: LiveModel, steps: list[Step], staged: Mapping[str, str],
           evidence: gates.Evidence) -> list[Check]:
    checks = []
    policy = want.policy
    for version in lifecycle.promotions(want, steps):
        checks += gates.metric_checks(want, have, version, evidence) if policy.metrics else []
        if policy.soak is not None:
            checks.append(gates.soak_check(want, have, version, evidence))
        if policy.require_tags:
            tags = have.versions[version].tags
            wrong = [f"{k}={v}" + (f" (has {tags[k]!r})" if k in tags else "")
                     for k, v in sorted(policy.require_tags.items()) if tags.get(k) != v]
            detail = f"missing {', '.join(wrong)}" if wrong else "has " + ", ".join(
                f"{k}={v}" for k, v in sorted(policy.require_tags.items()))
            checks.append(Check("require_tags", want.name, version, not wrong, detail))
        if policy.promote_from == "staging":
            staging = "Staging" if want.lifecycle.stages else f"the staging alias '{want.lifecycle.staging_alias}'"
            if lifecycle.in_staging(have, version, want.lifecycle):
                checks.append(Check("promote_from", want.name, version, True, f"in {staging} now"))
            elif version in staged:
                where = staged[version]
                checks.append(Check("promote_from", want.name, version, True, f"declared in staging at {where}"))
            else:
                now = f"in {have.versions[version].stage}, not" if want.lifecycle.stages else "not"
                checks.append(Check("promote_from", want.name, version, False,
                                    f"{now} in {staging} now, nor declared in staging before"))
    return checks


def plan_model(want: DesiredModel, have: LiveModel) -> list[Step]:
    stage_steps: list[Step] = []
    if want.lifecycle.stages:
        stage_steps = _ordered(want.name, _targets(want, have), have)
        for stage in _SERVING:
            stage_steps = _atomic_promotion(stage_steps, stage, have)
    return lifecycle.steps(want, have, stage_steps) + _alias_steps(want, have)


def _targets(want: DesiredModel, have: LiveModel) -> dict[str, Stage]:
    """The stage each version must end in, for the versions that must move."""
    target: dict[str, Stage] = {}
    for stage, versions in want.declared().items():
        for version in have.in_stage(stage) - versions:
            target[version] = Stage.ARCHIVED  # unless declared elsewhere, below
    for version in want.archived:
        target[version] = Stage.ARCHIVED
    for stage, versions in want.declared().items():
        for version in versions:
            target[version] = stage
    return {v: s for v, s in target.items() if have.versions[v].stage is not s}


def _ordered(model: str, targets: dict[str, Stage], have: LiveModel) -> list[Step]:
    """Archive, then moves between the serving stages, then promotions into staging, then into production.

    Production wins every trade-off: when versions leave production for staging while another comes in,
    they are archived by that promotion and brought to staging after it, so production is never empty and
    never over-full, at the price of a moment with them in Archived.
    """
    now = {v: have.versions[v].stage for v in targets}
    coming_in = any(s is Stage.PRODUCTION and now[v] is not Stage.PRODUCTION for v, s in targets.items())
    staying = have.in_stage(Stage.PRODUCTION) - targets.keys()
    demoted = set()
    if coming_in and not staying:
        demoted = {v for v, s in targets.items() if now[v] is Stage.PRODUCTION and s is Stage.STAGING}
    ranked: list[tuple[int, int, Transition]] = []
    for version, target in targets.items():
        if version in demoted:
            ranked.append((0, version_key(version), Transition(model, version, now[version], Stage.ARCHIVED)))
            ranked.append((5, version_key(version), Transition(model, version, Stage.ARCHIVED, target)))
        else:
            step = Transition(model, version, now[version], target)
            ranked.append((_rank(now[version], target), version_key(version), step))
    return [step for _, _, step in sorted(ranked, key=lambda r: (r[0], r[1]))]


def _rank(now: Stage, target: Stage) -> int:
    if target is Stage.ARCHIVED:
        return 0
    if now is Stage.PRODUCTION:
        return 1  # production → staging leaves production before anything enters it
    if now is Stage.STAGING:
        return 2
    return 3 if target is Stage.STAGING else 4


def _atomic_promotion(steps: list[Step], stage: Stage, have: LiveModel) -> list[Step]:
    """Let the first promotion into `stage` archive that stage's leavers in one server-side transaction.

    Only when, at that moment, the stage would hold exactly the versions that are being archived out of it:
    MLflow's archive_existing_versions archives everything else in the stage, wanted or not.
    """
    transitions = [s for s in steps if isinstance(s, Transition)]
    leavers = [s for s in transitions if s.from_stage is stage and s.to_stage is Stage.ARCHIVED]
    first_in = next((i for i, s in enumerate(transitions) if s.to_stage is stage), None)
    if not leavers or first_in is None:
        return steps
    occupants = set(have.in_stage(stage))
    for step in transitions[:first_in]:
        if step in leavers:
            continue  # deferred: the promotion performs it
        if step.from_stage is stage:
            occupants.discard(step.version)
        if step.to_stage is stage:
            occupants.add(step.version)
    if occupants != {s.version for s in leavers}:
        return steps
    promoter = transitions[first_in]
    rewritten: dict[Transition, Transition] = {
        promoter: dataclasses.replace(promoter, archive_existing_versions=True),
        **{s: dataclasses.replace(s, archived_by=promoter.version) for s in leavers},
    }
    return [rewritten.get(s, s) if isinstance(s, Transition) else s for s in steps]


def _alias_steps(want: DesiredModel, have: LiveModel) -> list[Step]:
    return [
        SetAlias(want.name, alias, version, have.aliases.get(alias))
        for alias, version in sorted(want.aliases.items())
        if have.aliases.get(alias) != version
    ]
