"""Renderers: one plan or apply result, shown as text (terminal), markdown (PR comment) or JSON (scripts)."""

from __future__ import annotations

from ..model import ApplyResult, Plan, SetAlias, Stage, Status, Step, Transition


def change(step: Step) -> str:
    """What a step does, in a few words."""
    if isinstance(step, SetAlias):
        moved = f"version {step.from_version} → {step.version}" if step.from_version else f"→ version {step.version}"
        return f"alias '{step.alias}': {moved}"
    return f"version {step.version}: {step.from_stage} → {step.to_stage}"


def note(step: Step, number: dict[tuple[str, str], int]) -> str:
    """How a transition is carried out, where it matters to the reader."""
    if not isinstance(step, Transition):
        return ""
    if step.archived_by is not None:
        promoter = number[(step.model, step.archived_by)]
        return f"done by step {promoter} in one transaction"
    if step.archive_existing_versions:
        return f"archives the current {step.to_stage} versions in the same transaction"
    return ""


def promoter_numbers(steps: tuple[Step, ...]) -> dict[tuple[str, str], int]:
    """1-based step numbers of the promotions that archive other versions, by (model, version)."""
    return {
        (s.model, s.version): i
        for i, s in enumerate(steps, 1)
        if isinstance(s, Transition) and s.archive_existing_versions
    }


def summary(plan: Plan) -> str:
    transitions = sum(1 for s in plan.steps if isinstance(s, Transition))
    aliases = len(plan.steps) - transitions
    production = sum(1 for s in plan.steps if isinstance(s, Transition) and s.to_stage is Stage.PRODUCTION)
    models = len(plan.models())
    parts = [_count(transitions, "transition"), _count(aliases, "alias move")]
    extra = f", {_count(production, 'promotion')} to Production" if production else ""
    return f"{_count(len(plan.steps), 'change')} to {_count(models, 'model')} ({', '.join(parts)}{extra})"


def result_summary(result: ApplyResult) -> str:
    counts = [f"{result.count(s)} {s.value}" for s in Status]
    verdict = "Apply complete" if result.ok else "Apply FAILED"
    return f"{verdict}: {', '.join(counts)}."


def in_sync_line(plan: Plan, source: str) -> str:
    return f"No changes: the registry at {plan.tracking_uri} matches {source}."


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
