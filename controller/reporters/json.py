"""Plans and apply results as stable JSON (schemas/plan.schema.json), for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .. import __version__
from ..changes import Review
from ..lifecycle import ARCHIVED_TAG
from ..model import ApplyResult, Check, DeleteAlias, Lifecycle, MarkArchived, Plan, SetAlias, SetLifecycle, Step

FORMAT_VERSION = 2  # 2: null for absent values, lists as arrays, alias changes with an alias field


def header() -> dict[str, Any]:
    """How every JSON document stagectl writes begins: its format, and the stagectl that wrote it."""
    return {"format_version": FORMAT_VERSION, "stagectl_version": __version__}


def step_data(step: Step) -> dict[str, Any]:
    if isinstance(step, SetAlias):
        return {"model": step.model, "action": step.action, "alias": step.alias, "version": step.version,
                "from_version": step.from_version,
                **({"stands_for": step.stands_for.value} if step.stands_for is not None else {})}
    if isinstance(step, DeleteAlias):
        return {"model": step.model, "action": step.action, "alias": step.alias, "version": step.version}
    if isinstance(step, MarkArchived):
        return {"model": step.model, "action": step.action, "version": step.version, "archived": step.archived,
                "tag": ARCHIVED_TAG}
    if isinstance(step, SetLifecycle):
        return {"model": step.model, "action": step.action, "lifecycle": lifecycle_data(step.lifecycle),
                "from_lifecycle": lifecycle_data(step.from_lifecycle) if step.from_lifecycle else None}
    data: dict[str, Any] = {"model": step.model, "action": step.action, "version": step.version,
                            "from_stage": step.from_stage.value, "to_stage": step.to_stage.value}
    if step.archive_existing_versions:
        data["archive_existing_versions"] = True
    if step.archived_by is not None:
        data["archived_by"] = step.archived_by
    return data


def check_data(check: Check) -> dict[str, Any]:
    return {"gate": check.gate, "model": check.model, "version": check.version, "ok": check.ok,
            "detail": check.detail}


def lifecycle_data(lifecycle: Lifecycle) -> dict[str, str]:
    return {"mode": lifecycle.mode.value, "production_alias": lifecycle.production_alias,
            "staging_alias": lifecycle.staging_alias}


def plan_data(plan: Plan) -> dict[str, Any]:
    data: dict[str, Any] = {**header(), "tracking_uri": plan.tracking_uri, "changes": len(plan.steps),
                            "steps": [step_data(s) for s in plan.steps], **_partial(plan.targets)}
    if plan.checks:
        data["checks"] = [check_data(c) for c in plan.checks]
    if plan.blocked or plan.held:
        data["held"] = [{"model": m, "reason": plan.frozen[m], "steps": [step_data(s) for s in steps]}
                        for m, steps in plan.blocked.items()] + _unready(plan.held)
    if plan.warnings:
        data["warnings"] = [{"model": w.model, "alias": w.alias, "version": w.version, "stage": w.stage.value,
                             "message": str(w)} for w in plan.warnings]
    return data


def _unready(held: Mapping[str, str]) -> list[dict[str, Any]]:
    """Models the registry cannot take now: held, with no step planned."""
    return [{"model": m, "reason": reason, "steps": []} for m, reason in sorted(held.items())]


def render_plan(plan: Plan) -> str:
    return json.dumps(plan_data(plan), indent=2) + "\n"


def render_review(review: Review) -> str:
    data = plan_data(review.plan)
    data["base"] = {
        "ref": review.base,
        "changes": [c.data() for c in review.changes],
        "drift_steps": [step_data(s) for s in review.drift],
    }
    return json.dumps(data, indent=2) + "\n"


def render_result(result: ApplyResult) -> str:
    steps = [{**step_data(o.step), "status": o.status.value, "error": o.error} for o in result.outcomes]
    data: dict[str, Any] = {
        **header(), "tracking_uri": result.tracking_uri, "ok": result.ok, "changes": len(steps), "steps": steps,
        **_partial(result.targets),
        "unexpected": [{"model": m, "detail": e} for m, effects in result.unexpected.items() for e in effects]}
    if result.held:
        data["held"] = _unready(result.held)
    return json.dumps(data, indent=2) + "\n"


def _partial(targets: tuple[str, ...]) -> dict[str, Any]:
    """Every report says whether the run covered the whole file; a partial one also names its models."""
    return {"partial": True, "models": list(targets)} if targets else {"partial": False}
