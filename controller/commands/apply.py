"""stagectl apply: re-plan against the live registry and execute the steps in order."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .. import applier, desired, gitops, lease, pipeline, planner, savedplan, uris
from ..errors import ConfigError, GateError, Problem
from ..model import ApplyResult, DesiredState, LiveState, Outcome, Plan, Status, Step, ownership_tags
from ..pipeline import checked_plan, connect, provenance_of, render, select, staged_before
from ..reporters import check_line, describe, held_line, markdown, text
from ..reporters import json as json_report
from . import Output

if TYPE_CHECKING:
    from ..registry import Registry


def apply(file: Path, given: uris.Given, fmt: str, parallelism: int, allow_dirty: bool,
          max_changes: int | None, lease_times: tuple[float, float], out: Output,
          adopt: frozenset[str] = frozenset(), models: Sequence[str] = ()) -> int:
    """Apply the file (or its `models` only); `lease_times` is (how long to wait for the lease, how long a held
    lease lasts)."""
    whole = desired.load(file)
    _refuse_unknown(adopt, whole)
    state = select(whole, models)
    provenance = _provenance(file, state, allow_dirty)
    registry = connect(whole, given, out)  # the whole file: the same lease with --model as without
    staged = staged_before(file, state, None, None)  # from git history, which cannot change while we run
    owner = pipeline.owner(state, file)

    def current_plan() -> tuple[Plan, LiveState]:
        live = registry.read([m.name for m in state.models])
        plan = checked_plan(state, live, registry, file=file, max_changes=max_changes, staged=staged, adopt=adopt)
        _refuse_violations(plan)
        return plan, live

    plan, live = current_plan()
    if plan.in_sync:  # the common scheduled run: no lease, no write at all
        _note_lease(registry, out)
        return _in_sync(plan, fmt, file, out)
    workers = parallelism if registry.parallel_writes else 1
    with _lease(registry, provenance.applied_sha, lease_times, out) as held:
        plan, live = current_plan()  # what another apply did while we waited is live now
        result = None
        if not plan.in_sync:
            for model, steps in plan.blocked.items():
                out.info(held_line(model, plan.frozen[model], len(steps)))
            result = _run(plan, registry, workers, provenance, out, held, live, _ownership(plan, live, owner))
    if result is None:
        code = _in_sync(plan, fmt, file, out)
    else:
        code = _finish(result, fmt, out)
        left = _left(state, plan, result)
        if left:
            out.info(f"Verification failed: after the last write the registry still differs from {file} "
                     f"({'; '.join(describe(s) for s in left)}): it was changed while apply ran")
            code = 1
    _warn_release(held, out)
    return code


def apply_saved(plan_file: Path, given: uris.Given, fmt: str, parallelism: int,
                lease_times: tuple[float, float], out: Output) -> int:
    """Execute exactly a saved plan; refuse it when the registry changed since it was made."""
    try:
        text = plan_file.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError((Problem(str(plan_file), f"cannot read the saved plan: {e.strerror}"),)) from None
    saved = savedplan.load(text, str(plan_file))
    _refuse_violations(saved.plan)
    registry = _saved_registry(saved, plan_file, given, out)
    if saved.plan.in_sync:
        return _in_sync(saved.plan, fmt, Path(saved.source.path), out)
    workers = parallelism if registry.parallel_writes else 1
    source = saved.source
    provenance = savedplan.provenance(saved, gitops.run_url())

    def refuse_if_stale(live: LiveState, written: str) -> None:
        changed = savedplan.changes_since(saved, live)
        if changed:
            raise savedplan.StalePlanError(
                f"saved plan {plan_file} is stale: the registry changed since it was made; {written}. "
                "Plan again.\n" + "\n".join(f"  {c}" for c in changed))

    done = f"{plan_file} is already applied: the registry is in the state it leads to; nothing was written"
    live = registry.read(list(saved.snapshot))
    if savedplan.already_applied(saved, live):  # before the lease: no write at all
        out.info(done)
        return 0
    refuse_if_stale(live, "nothing was written")  # before the lease: no write
    owner = saved.source.owner or ""
    with _lease(registry, source.commit or "", lease_times, out) as held:
        live = registry.read(list(saved.snapshot))
        if savedplan.already_applied(saved, live):  # another apply of this plan finished while we waited
            out.info(done)
            return 0
        refuse_if_stale(live, "no model was changed")
        result = _run(saved.plan, registry, workers, provenance, out, held, live,
                      _ownership(saved.plan, live, owner) if owner else {})
    code = _finish(result, fmt, out)
    _warn_release(held, out)
    return code


def _saved_registry(saved: savedplan.SavedPlan, plan_file: Path, given: uris.Given, out: Output) -> Registry:
    """The registry the plan was made for; one named on the command line or in the environment must be it."""
    named = given.tracking_uri or given.registry_uri or any(
        os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))
    if named:
        elsewhere = uris.redact(uris.locate(given).registry_uri)
        if elsewhere != saved.plan.tracking_uri:  # refused before any request to it
            raise savedplan.StalePlanError(f"{plan_file} was made for {saved.plan.tracking_uri}, not {elsewhere}")
        return connect(None, given, out, saved.unity_lease)
    if saved.registry_uri is None:
        raise savedplan.StalePlanError(
            f"{plan_file} was made for {saved.plan.tracking_uri}, whose address holds secrets a plan does not keep: "
            "name it with --tracking-uri or MLFLOW_TRACKING_URI")
    return connect(None, uris.Given(registry_uri=saved.registry_uri, tracking_uri=saved.registry_uri), out,
                   saved.unity_lease)


def _lease(registry: Registry, commit: str, times: tuple[float, float],
           out: Output) -> AbstractContextManager[lease.Lease]:
    return lease.held(registry, lease.new_owner(commit[:12]), lease.LeasePolicy(wait=times[0], ttl=times[1]),
                      on_wait=lambda holder: out.info(f"Waiting for the registry lease, held by {holder}"))


def _note_lease(registry: Registry, out: Output) -> None:
    """A run with nothing to do takes no lease, but says so when one is left behind."""
    holder = registry.lease_holder()
    if holder is not None:
        out.info(f"Note: the registry lease is held ({lease.describe(holder)}). If no apply is running, the "
                 "next apply with changes takes it over once it has seen it unchanged for its TTL.")


def _warn_release(held: lease.Lease, out: Output) -> None:
    if held.release_error is not None:
        out.info(f"Warning: the registry lease could not be released ({held.release_error}). The next apply "
                 "takes it over once it has seen it unchanged for its TTL.")


def _ownership(plan: Plan, live: LiveState, owner: str) -> dict[str, dict[str, str]]:
    """The ownership tags each changed model still lacks: written once, when a file starts managing it."""
    wanted = ownership_tags(owner)
    found = {}
    for name in plan.models():
        have = live.models[name].tags if name in live.models else {}
        missing = {k: v for k, v in wanted.items() if have.get(k) != v}
        if missing:
            found[name] = missing
    return found


def _refuse_unknown(adopt: frozenset[str], state: DesiredState) -> None:
    unknown = sorted(adopt - {m.name for m in state.models})
    if unknown:
        raise ConfigError(tuple(Problem(state.path, f"--adopt {name}: the file does not declare model '{name}'")
                                for name in unknown))


def _finish(result: ApplyResult, fmt: str, out: Output) -> int:
    out.data(_render(result, fmt, out))
    out.summary(lambda: markdown.render_result(result))
    out.also_json(lambda: json_report.render_result(result))
    return 0 if result.ok and not result.held else 1


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
    nothing = ApplyResult(plan.tracking_uri, (), held=plan.held, targets=plan.targets)
    out.data(json_report.render_result(nothing) if fmt == "json" else render(plan, fmt, str(file), out))
    out.also_json(lambda: json_report.render_result(nothing))
    return 1 if plan.held else 0


def _run(plan: Plan, registry: Registry, workers: int, provenance: gitops.Provenance, out: Output,
         held: lease.Lease, live: LiveState, model_tags: dict[str, dict[str, str]]) -> ApplyResult:
    total = len(plan.steps)
    out.info(f"Applying {total} step{'' if total == 1 else 's'} to {plan.tracking_uri}")
    tags = {model: provenance.tags_for(model) for model in plan.models()}
    with _progress(total, out) as progress:
        result = applier.apply(plan, registry, parallelism=workers, tags=tags, model_tags=model_tags, live=live,
                               fence=held.check, on_outcome=progress)
    return dataclasses.replace(result, held=plan.held, targets=plan.targets)


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


def _provenance(file: Path, state: DesiredState, allow_dirty: bool) -> gitops.Provenance:
    """Per model, the commit that last changed its declaration, and the commit checked out; refuses a stages
    file outside git or with uncommitted changes unless allowed."""
    return provenance_of(file, state, allow_dirty)


def _render(result: ApplyResult, fmt: str, out: Output) -> str:
    if fmt == "json":
        return json_report.render_result(result)
    if fmt == "markdown":
        return markdown.render_result(result)
    return text.render_result(result, color=out.color)
