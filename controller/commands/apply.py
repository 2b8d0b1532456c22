"""stagectl apply: re-plan against the live registry and execute the steps in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .. import applier, desired, github, gitops, lease, planner, savedplan, uris
from ..errors import ConfigError, GateError, Problem, RegistryError
from ..model import ApplyResult, DesiredState, Outcome, Plan, Status, Step
from ..pipeline import checked_plan, connect, render, staged_before
from ..reporters import check_line, describe, held_line, markdown, text
from ..reporters import json as json_report
from . import Output

if TYPE_CHECKING:
    from ..registry import Registry


def apply(file: Path, tracking_uri: str | None, fmt: str, parallelism: int, allow_dirty: bool,
          max_changes: int | None, lease_times: tuple[float, float], out: Output) -> int:
    """Apply the file; `lease_times` is (how long to wait for the lease, how long a held lease lasts)."""
    state = desired.load(file)
    provenance = _provenance(file, allow_dirty)
    registry = connect(state, tracking_uri, out)
    staged = staged_before(file, state, None, None)  # from git history, which cannot change while we run

    def current_plan() -> Plan:
        plan = checked_plan(state, registry.read([m.name for m in state.models]), registry, file=file,
                            max_changes=max_changes, staged=staged)
        _refuse_violations(plan)
        return plan

    plan = current_plan()
    if plan.in_sync:  # the common scheduled run: no lease, no write at all
        return _in_sync(plan, fmt, file, out)
    workers = parallelism if registry.parallel_writes else 1
    _check_permission(registry, plan)
    with _lease(registry, provenance.commit.sha if provenance else "", lease_times, out):
        plan = current_plan()  # what another apply did while we waited is live now
        if plan.in_sync:
            return _in_sync(plan, fmt, file, out)
        for model, steps in plan.blocked.items():
            out.info(held_line(model, plan.frozen[model], len(steps)))
        result = _run(plan, registry, workers, provenance, out)
        left = _left(state, plan, result)
    code = _finish(result, fmt, out)
    if left:
        out.info(f"Verification failed: after the last write the registry still differs from {file} "
                 f"({'; '.join(describe(s) for s in left)}): it was changed while apply ran")
        return 1
    return code


def apply_saved(plan_file: Path, tracking_uri: str | None, fmt: str, parallelism: int,
                lease_times: tuple[float, float], out: Output) -> int:
    """Execute exactly a saved plan; refuse it when the registry changed since it was made."""
    try:
        text = plan_file.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError((Problem(str(plan_file), f"cannot read the saved plan: {e.strerror}"),)) from None
    saved = savedplan.load(text, str(plan_file))
    _refuse_violations(saved.plan)
    uri = uris.resolve(tracking_uri, None)
    out.also_hide(uri)
    from ..registry import Registry

    registry = Registry(uri)
    if registry.display_uri != saved.plan.tracking_uri:
        raise savedplan.StalePlanError(
            f"{plan_file} was made for {saved.plan.tracking_uri}, not {registry.display_uri}")
    if saved.plan.in_sync:
        return _in_sync(saved.plan, fmt, Path(saved.source.path), out)
    workers = parallelism if registry.parallel_writes else 1
    _check_permission(registry, saved.plan)
    source = saved.source
    provenance = gitops.Provenance(gitops.Commit(source.commit, source.author or "", "", source.subject or ""),
                                   run_url=gitops.run_url()) if source.commit else None
    with _lease(registry, source.commit or "", lease_times, out):
        changed = savedplan.changes_since(saved, registry.read(list(saved.snapshot)))
        if changed:
            raise savedplan.StalePlanError(
                f"saved plan {plan_file} is stale: the registry changed since it was made; nothing was written. "
                "Plan again.\n" + "\n".join(f"  {c}" for c in changed))
        result = _run(saved.plan, registry, workers, provenance, out)
    return _finish(result, fmt, out)


def _lease(registry: Registry, commit: str, times: tuple[float, float], out: Output) -> AbstractContextManager[None]:
    return lease.held(registry, lease.new_owner(commit[:12]), lease.LeasePolicy(wait=times[0], ttl=times[1]),
                      on_wait=lambda holder: out.info(f"Waiting for the registry lease, held by {holder}"))


def _finish(result: ApplyResult, fmt: str, out: Output) -> int:
    out.data(_render(result, fmt, out))
    github.write_summary(lambda: markdown.render_result(result))
    return 0 if result.ok else 1


def _left(state: DesiredState, plan: Plan, result: ApplyResult) -> list[Step]:
    """What still differs after a successful apply, from the read-back of its last writes."""
    if not result.ok or result.final is None:
        return []
    wanted = {m.name: m for m in state.models}
    return [step for name in plan.models() if name in result.final.models
            for step in planner.plan_model(wanted[name], result.final.models[name])]


def _in_sync(plan: Plan, fmt: str, file: Path, out: Output) -> int:
    for model, steps in plan.blocked.items():
        out.info(held_line(model, plan.frozen[model], len(steps)))
    nothing = ApplyResult(plan.tracking_uri, ())
    out.data(json_report.render_result(nothing) if fmt == "json" else render(plan, fmt, str(file), out))
    return 0


def _check_permission(registry: Registry, plan: Plan) -> None:
    """Fail before any write when we may not write: one request, on the first model to change.

    Permissions are per model, so a model whose permission differs still fails on its own first write,
    before any of its steps changes anything, while the models we may write go on.
    """
    try:
        applier.Retrying(registry, applier.RetryPolicy()).call(registry.mark_managed, plan.models()[0])
    except RegistryError as e:
        if e.code in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
            raise
        # Any other failure of this idempotent tag says nothing about permission: two applies setting it at
        # the same moment make MLflow's SQL store report a duplicate key. The writes themselves will tell.


def _run(plan: Plan, registry: Registry, workers: int, provenance: gitops.Provenance | None,
         out: Output) -> ApplyResult:
    total = len(plan.steps)
    out.info(f"Applying {total} step{'' if total == 1 else 's'} to {plan.tracking_uri}")
    tags = provenance.tags() if provenance else {}
    with _progress(total, out) as progress:
        return applier.apply(plan, registry, parallelism=workers, tags=tags, on_outcome=progress)


@contextmanager
def _progress(total: int, out: Output) -> Iterator[Callable[[Outcome], None]]:
    """A live bar (done, failed, left) on a terminal; one plain line per step in logs."""
    done = failed = 0
    if not out.stderr.isatty():
        def line(outcome: Outcome) -> None:
            nonlocal done
            done += 1
            out.info(text.render_outcome(outcome, done, total))

        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    def label() -> str:
        return f"applied {done - failed}, failed {failed}, left {total - done}"

    with Progress(TextColumn("[bold]apply"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=Console(file=out.stderr)) as bar:
        task = bar.add_task(label(), total=total)

        def advance(outcome: Outcome) -> None:
            nonlocal done, failed
            done += 1
            failed += outcome.status is not Status.APPLIED
            if outcome.status is Status.FAILED:
                bar.console.print(text.render_outcome(outcome, done, total), style="red", markup=False)
            bar.update(task, advance=1, description=label())

        yield advance


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
