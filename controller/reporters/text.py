"""Plans and apply results as aligned text for a terminal, coloured when it is one."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ..changes import Review
from ..model import ApplyResult, Outcome, Plan, Stage, Status, Step, Transition
from . import (
    change,
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
    verb,
    warning_line,
)

_CODES = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "bold": "1", "dim": "2"}
_STATUS_COLOR = {Status.APPLIED: "green", Status.FAILED: "red", Status.SKIPPED: "yellow"}


def render_plan(plan: Plan, source: str, *, color: bool = False) -> str:
    gates = _gates(plan, color) + _partial(plan.targets, color)
    if plan.in_sync:
        return in_sync_line(plan, source) + "\n" + gates
    return _render(plan.tracking_uri, plan.steps, None, color) + f"\nPlan: {summary(plan)}.\n" + gates


def _partial(targets: tuple[str, ...], color: bool) -> str:
    return "\n" + _paint(partial_line(targets), "yellow", color) + "\n" if targets else ""


def _gates(plan: Plan, color: bool) -> str:
    lines = []
    if plan.checks:
        lines += ["", "Gates:"]
        lines += ["  " + _paint(check_line(c), "green" if c.ok else "red", color) for c in plan.checks]
    if plan.blocked or plan.held:
        lines += ["", "Held:"]
        lines += ["  " + _paint(held_line(m, plan.frozen[m], len(s)), "yellow", color) for m, s in plan.blocked.items()]
    lines += _unready(plan.held, color)
    if plan.warnings:
        lines += ["", "Warnings:"]
        lines += ["  " + _paint(warning_line(w), "yellow", color) for w in plan.warnings]
    return "".join(line + "\n" for line in lines)


def _unready(held: Mapping[str, str], color: bool) -> list[str]:
    return ["  " + _paint(unready_line(m, reason), "red", color) for m, reason in sorted(held.items())]


def render_result(result: ApplyResult, *, color: bool = False) -> str:
    steps = tuple(o.step for o in result.outcomes)
    verdict = "Apply complete" if result.ok else "Apply FAILED"
    footer = _paint(f"{verdict}: {counts(result)}.", "green" if result.ok else "red", color)
    unexpected = "".join(f"\n{_paint('Unexpected: ' + line, 'red', color)}" for line in unexpected_lines(result))
    body = _render(result.tracking_uri, steps, result.outcomes, color, unvouched=result.unexpected.keys())
    held = "".join(line + "\n" for line in ["", "Held:", *_unready(result.held, color)] if result.held)
    return body + unexpected + f"\n{footer}\n" + held + _partial(result.targets, color)


def render_outcome(outcome: Outcome, done: int, total: int) -> str:
    """One plain line per finished step, for logs."""
    line = f"[{done}/{total}] {outcome.step.model}: {describe(outcome.step)} ... {outcome.status.value}"
    return line + (f": {outcome.error}" if outcome.error else "")


def _render(uri: str, steps: tuple[Step, ...], outcomes: tuple[Outcome, ...] | None, color: bool,
            unvouched: Collection[str] = ()) -> str:
    lines = [f"Registry: {uri}"]
    model = None
    extras = notes(steps, unvouched)
    for i, step in enumerate(steps, 1):
        if step.model != model:
            model = step.model
            lines += ["", _paint(model, "bold", color)]
        status = ""
        if outcomes is not None:
            state = outcomes[i - 1].status
            status = _paint(f"{state.value:<8}", _STATUS_COLOR[state], color) + " "
        line = f"  {i:>3}. {status}{_paint(f'{verb(step):<8}', _verb_color(step), color)}{change(step)}"
        if extra := extras[i - 1]:
            line += _paint(f"  ({extra})", "dim", color)
        if outcomes is not None and outcomes[i - 1].error:
            line += "\n" + " " * 7 + _paint(str(outcomes[i - 1].error), "red", color)
        lines.append(line)
    return "\n".join(lines) + "\n"


def _verb_color(step: Step) -> str:
    if not isinstance(step, Transition):
        return "red" if verb(step) == "archive" else "cyan"
    return "red" if step.to_stage in (Stage.ARCHIVED, Stage.NONE) else "green"


def _paint(text: str, color: str, enabled: bool) -> str:
    return f"\033[{_CODES[color]}m{text}\033[0m" if enabled else text


def render_review(review: Review, source: str, *, color: bool = False) -> str:
    lines = [f"Change under review ({source}, {review.base} → working tree):"]
    width = max((len(c.where) for c in review.changes), default=0)
    lines += [f"  {c.where:<{width}}  {c}" for c in review.changes] or ["  (nothing declared differs)"]
    if review.drift:
        count = len(review.drift)
        warning = (f"Drift: the registry does not match {source} on {review.base}; {count} "
                   f"step{'s' if count != 1 else ''} would bring it back (a change made outside git, "
                   "or a merge not yet applied). The steps below include them.")
        lines += ["", _paint(warning, "yellow", color)]
    return "\n".join(lines) + "\n\n" + render_plan(review.plan, source, color=color)
