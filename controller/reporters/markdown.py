"""Plans and apply results as GitHub-flavoured markdown, for pull-request comments and job summaries."""

from __future__ import annotations

from ..model import ApplyResult, Outcome, Plan, Step
from . import counts, describe, in_sync_line, note, summary


def render_plan(plan: Plan, source: str) -> str:
    if plan.in_sync:
        return f"### stagectl plan: no changes\n\n{in_sync_line(plan, source)}\n"
    head = f"### stagectl plan: {summary(plan)}\n\nRegistry: `{plan.tracking_uri}`\n\n"
    return head + _table(plan.steps, None)


def render_result(result: ApplyResult) -> str:
    verdict = "complete" if result.ok else "FAILED"
    head = f"### stagectl apply {verdict}: {counts(result)}\n\nRegistry: `{result.tracking_uri}`\n\n"
    return head + _table(tuple(o.step for o in result.outcomes), result.outcomes)


def _table(steps: tuple[Step, ...], outcomes: tuple[Outcome, ...] | None) -> str:
    rows = ["| # | Model | Change | Note |" + (" Result |" if outcomes else ""),
            "|--:|---|---|---|" + ("---|" if outcomes else "")]
    for i, step in enumerate(steps, 1):
        row = f"| {i} | {_cell(step.model)} | {_cell(describe(step))} | {note(step, steps)} |"
        if outcomes:
            outcome = outcomes[i - 1]
            row += f" {outcome.status.value}{': ' + _cell(outcome.error) if outcome.error else ''} |"
        rows.append(row)
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
