"""Renderers: one plan or apply result, shown as text (terminal), markdown (PR comment) or JSON (scripts)."""

from __future__ import annotations

from collections.abc import Collection

from ..lifecycle import ARCHIVED_TAG, tag_value
from ..model import (
    AliasWarning,
    ApplyResult,
    Check,
    DeleteAlias,
    MarkArchived,
    Plan,
    SetAlias,
    SetLifecycle,
    Stage,
    Status,
    Step,
    Transition,
)


def verb(step: Step) -> str:
    if isinstance(step, (SetAlias, DeleteAlias)):
        return "alias"
    if isinstance(step, MarkArchived):
        return "archive" if step.archived else "unarchive"
    if isinstance(step, SetLifecycle):
        return "record"
    if step.to_stage is Stage.ARCHIVED:
        return "archive"
    if step.to_stage is Stage.NONE:
        return "unstage"
    return {Stage.PRODUCTION: "promote", Stage.STAGING: "stage"}.get(step.to_stage, "move")


def change(step: Step) -> str:
    """What a step changes, in a few words."""
    if isinstance(step, SetAlias):
        return f"{step.alias}: version {step.from_version or '(none)'} → {step.version}"
    if isinstance(step, DeleteAlias):
        return f"{step.alias}: version {step.version} → (none)"
    if isinstance(step, MarkArchived):
        return f"version {step.version}: tag {ARCHIVED_TAG}" + ("" if step.archived else " removed")
    if isinstance(step, SetLifecycle):
        was = tag_value(step.from_lifecycle) if step.from_lifecycle else "stages (nothing recorded)"
        return f"lifecycle: {was} → {tag_value(step.lifecycle)}"
    return f"version {step.version}: {step.from_stage} → {step.to_stage}"


def describe(step: Step) -> str:
    return f"{verb(step)} {change(step)}"


def notes(steps: tuple[Step, ...], unvouched: Collection[str] = ()) -> list[str]:
    """How each transition is carried out, where it matters to the reader ("" elsewhere).

    For the models in `unvouched` (the read-back showed effects nobody planned) nothing is claimed about
    which step archived what.
    """
    promoters: dict[tuple[str, str], int] = {}
    for i, s in enumerate(steps, 1):
        if isinstance(s, Transition) and s.archive_existing_versions:
            promoters.setdefault((s.model, s.version), i)

    def note(step: Step) -> str:
        if not isinstance(step, Transition) or step.model in unvouched:
            return ""
        if step.archived_by is not None:
            return f"atomic with step {promoters[(step.model, step.archived_by)]}"
        return "atomic: archive_existing_versions" if step.archive_existing_versions else ""

    return [note(step) for step in steps]


def summary(plan: Plan) -> str:
    transitions = sum(1 for s in plan.steps if isinstance(s, Transition))
    moves = sum(1 for s in plan.steps if isinstance(s, (SetAlias, DeleteAlias)))
    parts = [_count(transitions, "transition"), _count(moves, "alias move")]
    others = len(plan.steps) - transitions - moves
    if others:
        parts.append(_count(others, "tag"))
    return f"{_count(len(plan.steps), 'change')} to {_count(len(plan.models()), 'model')} ({', '.join(parts)})"


def counts(result: ApplyResult) -> str:
    return ", ".join(f"{result.count(s)} {s.value}" for s in Status)


def unexpected_lines(result: ApplyResult) -> list[str]:
    """What the read-back shows that the plan did not lead to, per model, with what to do about it."""
    return [f"{model}: {effect}: another writer changed the model while apply ran; check it, then plan again"
            for model, effects in result.unexpected.items() for effect in effects]


def in_sync_line(plan: Plan, source: str) -> str:
    if plan.held:
        return f"No changes: the registry at {plan.tracking_uri} matches {source}, but for the models held below."
    return f"No changes: the registry at {plan.tracking_uri} matches {source}."


def partial_line(targets: tuple[str, ...]) -> str:
    """Said by every report of a run limited with --model: the rest of the file was not looked at."""
    return f"Partial run: only {', '.join(targets)} (--model); the file's other models were left out."


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def check_line(check: Check) -> str:
    subject = check.model or "plan"
    if check.version is not None:
        subject += f" version {check.version}"
    return f"{'ok' if check.ok else 'VIOLATED'}  {check.gate}: {subject}: {check.detail}"


def held_line(model: str, reason: str, steps: int) -> str:
    return f"{model}: frozen ({reason}): {_count(steps, 'step')} held, apply skips them"


def unready_line(model: str, reason: str) -> str:
    """A model held because the registry cannot take its declaration now (Plan.held)."""
    return f"{model}: held, nothing planned for it: {reason}"


def warning_line(warning: AliasWarning) -> str:
    return f"WARNING  {warning}"
