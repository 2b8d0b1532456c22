"""Plans and apply results as aligned text for a terminal, coloured when it is one."""

from __future__ import annotations

from ..model import ApplyResult, Outcome, Plan, SetAlias, Stage, Status, Step, Transition
from . import change, in_sync_line, note, promoter_numbers, result_summary, summary

_COLORS = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "bold": "1", "dim": "2"}


def render_plan(plan: Plan, source: str, *, color: bool = False) -> str:
    if plan.in_sync:
        return in_sync_line(plan, source) + "\n"
    paint = _Paint(color)
    return _render(plan.tracking_uri, plan.steps, None, paint) + f"\nPlan: {summary(plan)}.\n"


def render_result(result: ApplyResult, *, color: bool = False) -> str:
    paint = _Paint(color)
    steps = tuple(o.step for o in result.outcomes)
    footer = paint(result_summary(result), "green" if result.ok else "red")
    return _render(result.tracking_uri, steps, result.outcomes, paint) + f"\n{footer}\n"


def render_outcome(outcome: Outcome, done: int, total: int) -> str:
    """One plain line per finished step, for logs."""
    line = f"[{done}/{total}] {outcome.step.model}: {change(outcome.step)} ... {outcome.status.value}"
    return line + (f": {outcome.error}" if outcome.error else "")


def _render(uri: str, steps: tuple[Step, ...], outcomes: tuple[Outcome, ...] | None, paint: _Paint) -> str:
    numbers = promoter_numbers(steps)
    lines = [f"Registry: {uri}"]
    model = None
    for i, step in enumerate(steps, 1):
        if step.model != model:
            model = step.model
            lines += ["", paint(model, "bold")]
        status = ""
        if outcomes is not None:
            outcome = outcomes[i - 1]
            status = paint(f"{outcome.status.value:<8}", _STATUS_COLOR[outcome.status]) + " "
        text = f"  {i:>3}. {status}{paint(_verb(step), _verb_color(step))} {change(step)}"
        extra = note(step, numbers)
        if extra:
            text += paint(f"  ({extra})", "dim")
        if outcomes is not None and outcomes[i - 1].error:
            text += "\n" + " " * 7 + paint(f"{outcomes[i - 1].error}", "red")
        lines.append(text)
    return "\n".join(lines) + "\n"


def _verb(step: Step) -> str:
    if isinstance(step, SetAlias):
        return "alias  "
    if step.to_stage is Stage.ARCHIVED:
        return "archive"
    return "promote" if step.to_stage is Stage.PRODUCTION else "stage  " if step.to_stage is Stage.STAGING else "move   "


def _verb_color(step: Step) -> str:
    if isinstance(step, Transition):
        return "red" if step.to_stage is Stage.ARCHIVED else "green"
    return "cyan"


_STATUS_COLOR = {Status.APPLIED: "green", Status.FAILED: "red", Status.SKIPPED: "yellow"}


class _Paint:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, color: str) -> str:
        return f"\033[{_COLORS[color]}m{text}\033[0m" if self.enabled else text


