"""stagectl drift: what changed in the registry outside git, told apart from merged changes not yet applied."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from .. import desired, drift, edit, planner, uris
from ..drift import Kind, ModelDrift
from ..errors import ConfigError
from ..gitops import Checkout, GitError
from ..model import DesiredModel, DesiredState, LiveState
from ..pipeline import connect
from ..reporters import describe, unready_line
from ..reporters import json as json_report
from . import Output


def drift_command(file: Path, given: uris.Given, fmt: str, detailed_exitcode: bool, mode: str,
                  branch: str | None, apply_options: tuple[int, tuple[float, float]], out: Output) -> int:
    state = desired.load(file)
    checkout = Checkout.find(file)
    history = [c for c, _, _ in checkout.history()] if checkout else []
    registry = connect(state, given, out)
    live = registry.read([m.name for m in state.models])
    held = {m.name: "; ".join(reason for _, reason in reasons) for m in state.models
            if (reasons := planner.check_model(m, live.models.get(m.name)))}
    at_commit: dict[str, DesiredState | None] = {}

    def declared_at(sha: str, name: str) -> DesiredModel | None:
        if sha not in at_commit:
            text = checkout.read_at(sha) if checkout else None
            try:
                at_commit[sha] = desired.parse(text, f"{sha[:7]}:{file}") if text else None
            except ConfigError:
                at_commit[sha] = None
        found = at_commit[sha]
        return next((m for m in found.models if m.name == name), None) if found else None

    shas = [c.sha for c in history]
    report = []
    for model in state.models:
        if model.name in held:
            continue  # the registry cannot take its declaration now: reported as held, the others go on
        sha = drift.last_applied(live.models[model.name], shas)
        applied = declared_at(sha, model.name) if sha else None
        report.append(drift.classify(model, applied, sha, live.models[model.name]))
    out.data(_render(report, registry.display_uri, str(file), fmt, held))
    drifted = [d for d in report if d.drifted]
    if mode == "heal" and any(d.kind is not Kind.IN_SYNC for d in report):
        from .apply import apply

        out.info("Healing: applying stages.yaml")
        return apply(file, given, "text", apply_options[0], False, None, apply_options[1], out)
    if mode == "propose" and drifted:
        return _propose(file, state, live, drifted, checkout, branch, out) or (1 if held else 0)
    return 1 if held else 2 if detailed_exitcode and drifted else 0


def _propose(file: Path, state: DesiredState, live: LiveState, drifted: list[ModelDrift], checkout: Checkout | None,
             branch: str | None, out: Output) -> int:
    """Write what the registry now holds into the stages file, on a new branch, for a person to review."""
    if checkout is None:
        raise GitError(f"{file} is not in a git repository: --mode propose needs one to make a branch")
    text = file.read_text(encoding="utf-8")
    models = {m.name: m for m in state.models}
    for d in drifted:
        stages, aliases = drift.proposal(models[d.model], live.models[d.model])
        text = edit.declare(text, d.model, stages, aliases, str(file))
    name = branch or f"stagectl/drift-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    names = ", ".join(d.model for d in drifted)
    commit = checkout.commit_on_new_branch(name, text, f"Accept registry changes made outside git: {names}")
    out.info(f"Proposed: committed {commit.sha[:7]} on new branch '{name}'; open a pull request to accept "
             "the registry as it is, or run with --mode heal to restore the file's state")
    return 0


def _render(report: list[ModelDrift], uri: str, source: str, fmt: str, held: dict[str, str]) -> str:
    if fmt == "json":
        return json.dumps({"format_version": 1, "tracking_uri": uri, "models": [
            {"model": d.model, "status": d.kind.value, "applied_commit": d.applied_commit,
             "pending": [{"key": c.key, "before": c.before, "after": c.after} for c in d.pending],
             "restore_steps": [json_report.step_data(s) for s in d.restore]} for d in report],
            "held": [{"model": m, "reason": r} for m, r in sorted(held.items())]}, indent=2) + "\n"
    lines = [unready_line(m, r) for m, r in sorted(held.items())]
    for d in report:
        at = f" {d.applied_commit[:7]}" if d.applied_commit else ""
        if d.kind is Kind.DRIFTED:
            lines.append(f"{d.model}: CHANGED OUTSIDE GIT since stagectl applied{at}; to restore:")
            lines += [f"    {describe(s)}" for s in d.restore]
        elif d.kind is Kind.UNKNOWN:
            lines.append(f"{d.model}: differs from {source}, and no apply by stagectl is recorded on it:")
            lines += [f"    {describe(s)}" for s in d.restore]
        elif d.kind is Kind.PENDING:
            lines.append(f"{d.model}: merged change not yet applied (applied{at} → now): "
                         + "; ".join(str(c) for c in d.pending))
        else:
            lines.append(f"{d.model}: in sync")
    counts = {k: sum(1 for d in report if d.kind is k) for k in Kind}
    summary = (f"{counts[Kind.DRIFTED]} changed outside git, {counts[Kind.UNKNOWN]} of unknown origin, "
               f"{counts[Kind.PENDING]} pending, {counts[Kind.IN_SYNC]} in sync")
    if fmt == "markdown":
        body = "\n".join(f"- {line.strip()}" if not line.startswith("    ") else f"  - {line.strip()}"
                         for line in lines)
        return f"### stagectl drift: {summary}\n\nRegistry: `{uri}`\n\n{body}\n"
    return f"Registry: {uri}\n\n" + "\n".join(lines) + f"\n\nDrift: {summary}.\n"
