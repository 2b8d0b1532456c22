"""stagectl apply: re-plan against the live registry and execute the steps in order."""

from __future__ import annotations

from pathlib import Path

from .. import applier
from ..model import ApplyResult, Outcome
from ..reporters import json as json_report
from ..reporters import markdown, text
from . import Output
from .plan import compute, render


def apply(file: Path, tracking_uri: str | None, fmt: str, parallelism: int, out: Output) -> int:
    _, registry, plan = compute(file, tracking_uri, out)
    if plan.in_sync:
        nothing = ApplyResult(plan.tracking_uri, ())
        out.data(json_report.render_result(nothing) if fmt == "json" else render(plan, fmt, str(file), out))
        return 0
    total = len(plan.steps)
    out.info(f"Applying {total} step{'' if total == 1 else 's'} to {plan.tracking_uri}")
    done = 0

    def progress(outcome: Outcome) -> None:
        nonlocal done
        done += 1
        out.info(text.render_outcome(outcome, done, total))

    workers = parallelism if registry.parallel_writes else 1
    result = applier.apply(plan, registry, parallelism=workers, on_outcome=progress)
    out.data(_render(result, fmt, out))
    return 0 if result.ok else 1


def _render(result: ApplyResult, fmt: str, out: Output) -> str:
    if fmt == "json":
        return json_report.render_result(result)
    if fmt == "markdown":
        return markdown.render_result(result)
    return text.render_result(result, color=out.color)
