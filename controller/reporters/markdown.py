"""Plans and apply results as GitHub-flavoured markdown, for pull-request comments and job summaries."""

from __future__ import annotations

from ..model import ApplyResult, Outcome, Plan, SetAlias, Step
from . import in_sync_line, note, promoter_numbers, result_summary, summary


def render_plan(plan: Plan, source: str) -> str:
    if plan.in_sync:
        return f"### stagectl plan: no changes\n\n{in_sync_line(plan, source)}\n"
    head = f"### stagectl plan: {summary(plan)}\n\nRegistry: `{plan.tracking_uri}`\n\n"
    return head + _table(plan.steps, None)


def render_result(result: ApplyResult) -> str:
    head = f"### stagectl apply: {result_summary(result)}\n\nRegistry: `{result.tracking_uri}`\n\n"
    return head + _table(tuple(o.step for o in result.outcomes), result.outcomes)


def _table(steps: tuple[Step, ...], outcomes: tuple[Outcome, ...] | None) -> str:
    numbers = promoter_numbers(steps)
    status_head = " Result |" if outcomes is not None else ""
    rows = [
        f"| # | Model | Change | Version | From | To | Note |{status_head}",
        "|--:|---|---|---|---|---|---|" + ("---|" if outcomes is not None else ""),
    ]
    for i, step in enumerate(steps, 1):
        if isinstance(step, SetAlias):
            cells = [f"alias `{_cell(step.alias)}`", step.version, step.from_version or "—", step.version]
        else:
            cells = ["transition", step.version, str(step.from_stage), str(step.to_stage)]
        row = f"| {i} | {_cell(step.model)} | " + " | ".join(cells) + f" | {note(step, numbers)} |"
        if outcomes is not None:
            outcome = outcomes[i - 1]
            detail = f": {_cell(outcome.error)}" if outcome.error else ""
            row += f" {outcome.status.value}{detail} |"
        rows.append(row)
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
