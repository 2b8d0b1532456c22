"""Plans and apply results as GitHub-flavoured markdown, for pull-request comments and job summaries."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ..changes import Review
from ..model import ApplyResult, Outcome, Plan, Step
from . import (
    check_line,
    counts,
    describe,
    held_line,
    in_sync_line,
    notes,
    partial_line,
    summary,
    unexpected_lines,
    unready_line,
)


def render_plan(plan: Plan, source: str) -> str:
    if plan.in_sync:
        return f"### stagectl plan: no changes\n\n{in_sync_line(plan, source)}\n" + _partial(plan.targets) + gates(plan)
    head = f"### stagectl plan: {summary(plan)}\n\nRegistry: `{plan.tracking_uri}`\n\n" + _partial(plan.targets)
    return head + _table(plan.steps, None) + gates(plan)


def _partial(targets: tuple[str, ...]) -> str:
    return f"> [!NOTE]\n> {cell(partial_line(targets))}\n\n" if targets else ""


def gates(plan: Plan) -> str:
    """Violated gates as a warning anyone skimming sees, passed ones and held models as plain lists."""
    parts = []
    if plan.violations:
        parts += ["", "> [!CAUTION]", "> Gates violated; apply will refuse this plan:"]
        parts += [f"> - {cell(check_line(c))}" for c in plan.violations]
    passed = [c for c in plan.checks if c.ok]
    if passed:
        parts += ["", "Gates passed:", *[f"- {cell(check_line(c))}" for c in passed]]
    if plan.blocked:
        parts += ["", "Held:", *[f"- {cell(held_line(m, plan.frozen[m], len(s)))}" for m, s in plan.blocked.items()]]
    if plan.warnings:
        parts += ["", "> [!WARNING]", "> Aliases left on versions that serve from no stage:"]
        parts += [f"> - {cell(str(w))}" for w in plan.warnings]
    return "".join(line + "\n" for line in parts) + _unready(plan.held)


def _unready(held: Mapping[str, str]) -> str:
    """Models the registry cannot take now, as a warning: the run exits 1 for them."""
    if not held:
        return ""
    lines = ["", "> [!WARNING]", "> Held (nothing planned for these models; the run exits 1):"]
    lines += [f"> - {cell(unready_line(m, reason))}" for m, reason in sorted(held.items())]
    return "".join(line + "\n" for line in lines)


def render_result(result: ApplyResult) -> str:
    verdict = "complete" if result.ok else "FAILED"
    head = f"### stagectl apply {verdict}: {counts(result)}\n\nRegistry: `{result.tracking_uri}`\n\n" \
        + _partial(result.targets)
    table = _table(tuple(o.step for o in result.outcomes), result.outcomes, unvouched=result.unexpected.keys())
    unexpected = unexpected_lines(result)
    if unexpected:
        table += "\n> [!CAUTION]\n> Effects nobody planned:\n" + "".join(f"> - {cell(line)}\n" for line in unexpected)
    return head + table + _unready(result.held)


def _table(steps: tuple[Step, ...], outcomes: tuple[Outcome, ...] | None, rows: int | None = None,
           unvouched: Collection[str] = ()) -> str:
    """Steps as a table; `rows` limits how many are shown (numbers and notes still refer to all)."""
    table = ["| # | Model | Change | Note |" + (" Result |" if outcomes else ""),
             "|--:|---|---|---|" + ("---|" if outcomes else "")]
    extras = notes(steps, unvouched)
    for i, step in enumerate(steps[:rows], 1):
        row = f"| {i} | {cell(step.model)} | {cell(describe(step))} | {extras[i - 1]} |"
        if outcomes:
            outcome = outcomes[i - 1]
            row += f" {outcome.status.value}{': ' + cell(outcome.error) if outcome.error else ''} |"
        table.append(row)
    return "\n".join(table) + "\n"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


MARKER = "<!-- stagectl:plan -->"  # lets CI find and update its one comment instead of adding more
LIMIT = 65_536  # GitHub's maximum comment size, in characters
_CUT_STEPS = (None, 1000, 300, 100, 30, 0)


def render_review(review: Review, source: str) -> str:
    """One sticky pull-request comment: summary line first, detail folded, always under GitHub's limit."""
    for max_rows in _CUT_STEPS:
        text = _review(review, source, max_rows)
        if len(text) <= LIMIT - 1000:
            return text
    return text[: LIMIT - 1000]  # unreachable in practice: the summary alone is a few hundred characters


def _review(review: Review, source: str, max_rows: int | None) -> str:
    plan = review.plan
    headline = "no registry changes" if plan.in_sync else summary(plan)
    parts = [MARKER, f"### stagectl plan: {headline}", "",
             f"Registry: `{plan.tracking_uri}` · compared with `{cell(review.base)}`", ""]
    if plan.targets:
        parts += [_partial(plan.targets).rstrip("\n"), ""]
    if review.drift:
        parts += [
            "> [!WARNING]",
            f"> The registry does not match {source} on `{cell(review.base)}`: "
            f"{len(review.drift)} step{'s' if len(review.drift) != 1 else ''} would bring it back "
            "(a change made outside git, or a merge not yet applied). The steps below include them.",
            "",
        ]
    changed_models = len({c.model for c in review.changes if c.model is not None})
    file_wide = " and the file's settings" if any(c.model is None for c in review.changes) else ""
    parts += [f"<details><summary>Change under review: {len(review.changes)} declared change"
              f"{'s' if len(review.changes) != 1 else ''} to {changed_models} model"
              f"{'s' if changed_models != 1 else ''}{file_wide}</summary>", ""]
    if review.changes:
        rows = ["| Model | Change |", "|---|---|"]
        rows += [f"| {cell(c.where)} | {cell(str(c))} |" for c in review.changes[:max_rows]]
        parts += [*rows, *_cut_note(len(review.changes), max_rows)]
    else:
        parts.append(f"{source} declares nothing different from `{cell(review.base)}`.")
    parts += ["", "</details>", ""]
    open_attr = " open" if len(plan.steps) <= 20 else ""
    parts += [f"<details{open_attr}><summary>Registry steps when this merges: {len(plan.steps)}</summary>", ""]
    if plan.in_sync:
        parts.append(in_sync_line(plan, source))
        parts.append(gates(plan).rstrip("\n"))
    else:
        shown = plan.steps[:max_rows]
        parts += [_table(plan.steps, None, rows=len(shown)).rstrip("\n"), *_cut_note(len(plan.steps), max_rows),
                  gates(plan).rstrip("\n")]
    parts += ["", "</details>", ""]
    return "\n".join(parts)


def _cut_note(total: int, max_rows: int | None) -> list[str]:
    if max_rows is None or total <= max_rows:
        return []
    return ["", f"_Showing {max_rows} of {total} rows to stay within GitHub's comment size; "
            "run `stagectl plan --base` locally for the full report._"]
