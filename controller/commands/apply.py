"""stagectl apply: re-plan against the live registry and execute the steps in order."""

from __future__ import annotations

from pathlib import Path

from .. import applier, desired, github, gitops
from ..errors import GateError
from ..model import ApplyResult, Outcome, Plan
from ..reporters import check_line, held_line, markdown, text
from ..reporters import json as json_report
from . import Output
from .plan import checked_plan, connect, render


def apply(file: Path, tracking_uri: str | None, fmt: str, parallelism: int, allow_dirty: bool,
          max_changes: int | None, out: Output) -> int:
    state = desired.load(file)
    provenance = _provenance(file, allow_dirty)
    registry = connect(state, tracking_uri, out)
    live = registry.read([m.name for m in state.models])
    plan = checked_plan(state, live, registry, file=file, max_changes=max_changes)
    _refuse_violations(plan)
    for model, steps in plan.blocked.items():
        out.info(held_line(model, plan.frozen[model], len(steps)))
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
    tags = provenance.tags() if provenance else {}
    result = applier.apply(plan, registry, parallelism=workers, tags=tags, on_outcome=progress)
    out.data(_render(result, fmt, out))
    github.write_summary(markdown.render_result(result))
    return 0 if result.ok else 1


def _refuse_violations(plan: Plan) -> None:
    if plan.violations:
        lines = "\n".join(f"  {check_line(c)}" for c in plan.violations)
        raise GateError(f"the plan violates {len(plan.violations)} gate"
                        f"{'s' if len(plan.violations) != 1 else ''}; nothing was written:\n{lines}")


def _provenance(file: Path, allow_dirty: bool) -> gitops.Provenance | None:
    """The commit behind this apply; refuses a stages file with uncommitted changes unless allowed."""
    checkout = gitops.Checkout.find(file)
    if checkout is None:
        return None
    dirty = checkout.is_dirty()
    if dirty and not allow_dirty:
        raise gitops.GitError(f"{file} has uncommitted changes: what reaches the registry must be a commit "
                              "(commit the change, or pass --allow-dirty)")
    return gitops.Provenance(checkout.head(), dirty=dirty, run_url=gitops.run_url())


def _render(result: ApplyResult, fmt: str, out: Output) -> str:
    if fmt == "json":
        return json_report.render_result(result)
    if fmt == "markdown":
        return markdown.render_result(result)
    return text.render_result(result, color=out.color)
