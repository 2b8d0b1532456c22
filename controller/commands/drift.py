"""stagectl drift: what changed in the registry outside git, told apart from merged changes not yet applied."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .. import desired, drift, edit, paths, pipeline, planner, uris
from ..drift import Kind, ModelDrift
from ..gitops import Checkout, GitError
from ..model import DesiredModel, DesiredState, LiveModel, LiveState
from ..pipeline import connect, known_names
from ..reporters import describe, unready_line
from ..reporters import json as json_report
from . import Output

BRANCH = "stagectl/drift"  # one proposal branch, updated in place: one pull request per open drift


def drift_command(file: Path, given: uris.Given, fmt: str, detailed_exitcode: bool, mode: str,
                  branch: str | None, apply_options: tuple[int, tuple[float, float]], out: Output) -> int:
    state = desired.load(file)
    if mode == "propose":
        paths.check_write(file)  # before any request: the proposal could not be written
    checkout = Checkout.find(file)
    registry = connect(state, given, out)
    live = registry.read([m.name for m in state.models])
    known = known_names(state, live, registry)
    held = {m.name: "; ".join(reason for _, reason in reasons) for m in state.models
            if (reasons := planner.check_model(m, live.models.get(m.name), known, m.name in live.hidden))}
    # The registry cannot take a held model's declaration now: reported as held, the others go on.
    models = [m for m in state.models if m.name not in held]
    differ = [m for m in models if planner.plan_model(m, live.models[m.name])]
    # The history is read only when something differs: an in-sync registry needs none (nor a full clone).
    revisions = pipeline.history(checkout, "drift") if differ and checkout else ()
    owner = pipeline.owner(state, file)
    report = [_classify(model, live.models[model.name], revisions, checkout, owner) for model in models]
    out.data(_render(report, registry.display_uri, str(file), fmt, held))
    out.also_json(lambda: _render(report, registry.display_uri, str(file), "json", held))
    drifted = [d for d in report if d.drifted]
    if mode == "heal" and any(d.kind is not Kind.IN_SYNC for d in report):
        from .apply import apply

        out.info(f"Healing: applying {file}")
        # The report file keeps the drift found; the apply's own report follows on stdout.
        return apply(file, given, "text", apply_options[0], False, None, apply_options[1],
                     dataclasses.replace(out, json_report=None))
    if mode == "propose":  # another file's models are that file's to propose for
        mine = [d for d in drifted if d.kind is not Kind.ELSEWHERE]
        return _propose(file, state, live, mine, checkout, branch or BRANCH, out) or (1 if held else 0)
    return 1 if held else 2 if detailed_exitcode and drifted else 0


def _classify(model: DesiredModel, live: LiveModel, revisions: tuple[pipeline.Revision, ...],
              checkout: Checkout | None, owner: str) -> ModelDrift:
    order = {r.commit.sha: i for i, r in enumerate(revisions)}
    # An apply records the commit checked out, which need not have changed the file: the file's own last
    # change at or before it is what was applied.
    at = {checkout.last_change_at(sha) for sha in drift.applied_commits(live)} if checkout and revisions else set()
    known = sorted((sha for sha in at if sha in order), key=order.__getitem__)
    applied = known[0] if known else None
    declared = []
    for revision in revisions:
        if revision.readable:
            then = next((m for m in revision.after.models if m.name == model.name), None) if revision.after else None
            declared.append((revision.commit.sha, then))
        if revision.commit.sha == applied:
            break
    return drift.classify(model, live, declared, applied, owner)


def _propose(file: Path, state: DesiredState, live: LiveState, drifted: list[ModelDrift], checkout: Checkout | None,
             branch: str, out: Output) -> int:
    """Write what the registry now holds into the stages file, on the proposal branch, for a person to review."""
    if not drifted:
        out.info("Nothing to propose: no model was changed outside git; no branch or commit made")
        return 0
    if checkout is None:
        raise GitError(f"{file} is not in a git repository: --mode propose needs one to make a branch")
    if checkout.is_dirty():
        raise GitError(f"{file} has uncommitted changes; commit or stash them before --mode propose")
    if checkout.current_branch() == branch:
        raise GitError(f"'{branch}' is checked out: run --mode propose from the branch the proposal starts from "
                       "(e.g. main), or name another branch with --branch")
    text = file.read_text(encoding="utf-8")
    models = {m.name: m for m in state.models}
    new = text
    for d in drifted:
        stages, aliases = drift.proposal(models[d.model], live.models[d.model])
        new = edit.declare(new, d.model, stages, aliases, str(file))
    if new == text:
        out.info(f"Nothing to propose: {file} cannot declare these changes (they are to keys it leaves undeclared); "
                 "no branch or commit made")
        return 0
    names = ", ".join(d.model for d in drifted)
    commit = checkout.commit_on_new_branch(branch, new, f"Accept registry changes made outside git: {names}",
                                           replace=True)
    out.info(f"Proposed: committed {commit.sha[:7]} on branch '{branch}' (reset to start from the current commit); "
             "open a pull request to accept the registry as it is, or run with --mode heal to restore the file's state")
    return 0


def _render(report: list[ModelDrift], uri: str, source: str, fmt: str, held: dict[str, str]) -> str:
    if fmt == "json":
        return json.dumps({**json_report.header(), "tracking_uri": uri,
                           "changes": sum(len(d.restore) for d in report), "models": [
            {"model": d.model, "status": d.kind.value, "applied_commit": d.applied_commit,
             "matches_commit": d.matches_commit, "managed_by": d.owner,
             "pending": [c.data() for c in d.pending],
             "restore_steps": [json_report.step_data(s) for s in d.restore]} for d in report],
            "held": [{"model": m, "reason": r} for m, r in sorted(held.items())]}, indent=2) + "\n"
    lines = [unready_line(m, r) for m, r in sorted(held.items())]
    for d in report:
        at = f" {d.applied_commit[:7]}" if d.applied_commit else ""
        if d.kind is Kind.DRIFTED:
            lines.append(f"{d.model}: CHANGED OUTSIDE GIT since stagectl applied{at}; to restore {source}:")
            lines += [f"    {describe(s)}" for s in d.restore]
        elif d.kind is Kind.ELSEWHERE:
            lines.append(f"{d.model}: managed by another file: {d.owner}; it differs from {source} because that "
                         f"file declares otherwise. Remove the model from one of them, or take it over with "
                         f"apply --adopt {d.model}")
        elif d.kind is Kind.UNKNOWN:
            lines.append(f"{d.model}: differs from {source}, and no apply by stagectl is recorded on it:")
            lines += [f"    {describe(s)}" for s in d.restore]
        elif d.kind is Kind.PENDING:
            matches = (d.matches_commit or "")[:7]
            lines.append(f"{d.model}: merged change not yet applied (the registry matches {matches} → now): "
                         + "; ".join(str(c) for c in d.pending))
        else:
            lines.append(f"{d.model}: in sync")
    counts = {k: sum(1 for d in report if d.kind is k) for k in Kind}
    summary = (f"{counts[Kind.DRIFTED]} changed outside git, {counts[Kind.UNKNOWN]} of unknown origin, "
               f"{counts[Kind.PENDING]} pending, {counts[Kind.IN_SYNC]} in sync")
    if counts[Kind.ELSEWHERE]:
        summary += f", {counts[Kind.ELSEWHERE]} managed by another file"
    if fmt == "markdown":
        body = "\n".join(f"- {line.strip()}" if not line.startswith("    ") else f"  - {line.strip()}"
                         for line in lines)
        return f"### stagectl drift: {summary}\n\nRegistry: `{uri}`\n\n{body}\n"
    return f"Registry: {uri}\n\n" + "\n".join(lines) + f"\n\nDrift: {summary}.\n"
