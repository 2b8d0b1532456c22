"""Proposing, as propose and the webhook receiver both run it: read the registry, judge each candidate with the
planner's gates on the file with its promotion declared, and commit the ones that qualify on their branches."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from . import desired, edit, paths, pipeline, planner, propose, uris
from .gates import metric_results
from .gitops import Checkout, GitError
from .output import Output
from .propose import Proposal, Status
from .reporters import proposal as report


def run(models: list[str], file: Path, given: uris.Given, dry_run: bool, out: Output,
        remote: str = "origin") -> report.Report:
    """Every proposal the policy of the named models (all the file's when none) asks for; written unless dry.
    A proposal branch counts as it is here, else as last fetched from `remote`."""
    state = desired.load(file)
    chosen = pipeline.select(state, models)
    checkout = Checkout.find(file)
    if not dry_run:
        _check_checkout(file, checkout)
    wanted = [m for m in chosen.models if m.policy.propose]
    if not wanted:
        out.info(f"Nothing to propose: no model's policy in {file} lists promotions to propose "
                 "(add propose: [staging, production] under policy or defaults.policy)")
    registry = pipeline.connect(state, given, out)
    live = registry.read([m.name for m in wanted]) if wanted else None
    text = file.read_text(encoding="utf-8")
    unreadable = tuple((m.name, f"it {planner.absent(m.name, hidden=m.name in live.hidden)}") for m in wanted
                       if live is not None and m.name not in live.models)
    drafts = []
    for model in wanted:
        if live is None or model.name not in live.models:
            continue
        for candidate in propose.candidates(model, live.models[model.name]):
            new = edit.move_version(text, model.name, candidate.version, candidate.stage, str(file), move_aliases=True)
            edited = desired.parse(new, str(file))  # the model alone, as its pull request will plan it
            drafts.append((candidate, new, dataclasses.replace(
                edited, models=tuple(m for m in edited.models if m.name == model.name))))
    judged: list[Proposal] = []
    if live is not None and drafts:
        # One read of every run the metric gates compare, for all candidates at once.
        evidence = pipeline.read_evidence([e.models[0] for c, _, e in drafts if c.stage == "production"], live,
                                          registry)
        staged = pipeline.staged_before(file, state, None, None)
        for candidate, new, edited in drafts:
            model = edited.models[0]
            plan = pipeline.checked_plan(edited, live, registry, file=file, staged=staged, evidence=evidence)
            metrics = metric_results(model, live.models[model.name], candidate.version, evidence) \
                if candidate.stage == "production" and model.policy.metrics else []
            judged.append(Proposal(candidate, propose.branch(model.name, candidate.stage), new, plan, tuple(metrics)))
    proposed, held_back = _choose(judged)
    written = []
    for p in proposed:
        assert live is not None
        version = live.models[p.candidate.model].versions[p.candidate.version]
        body = uris.scrub(report.body(p, version, str(file)), out.secrets)  # it goes into git: no secret
        written.append(_write(dataclasses.replace(p, body=body), checkout, dry_run, remote))
    return report.Report(registry.display_uri, tuple(written), tuple(held_back), unreadable, dry_run)


def _check_checkout(file: Path, checkout: Checkout | None) -> None:
    paths.check_read(file)
    if checkout is None or not checkout.has_commits():
        raise GitError(f"{file} is not in a git repository with commits: propose writes its proposals as branches "
                       "(run it in a clone of the repository, or pass --dry-run to only report)")
    if checkout.is_dirty():
        raise GitError(f"{file} has uncommitted changes: proposals start from the last commit; commit or stash "
                       "them first, or pass --dry-run")


def _choose(judged: list[Proposal]) -> tuple[list[Proposal], list[Proposal]]:
    """The first qualifying candidate per branch (they come best first), and every candidate that failed."""
    proposed: dict[str, Proposal] = {}
    for p in judged:
        if not p.failed:
            proposed.setdefault(p.branch, p)
    return list(proposed.values()), [p for p in judged if p.failed]


def _write(p: Proposal, checkout: Checkout | None, dry_run: bool, remote: str) -> Proposal:
    """Commit the proposal on its branch, unless the branch (here, or as last fetched) already proposes it."""
    existing = checkout.proposal_text(p.branch, remote) if checkout else None
    if existing == p.text:
        return dataclasses.replace(p, status=Status.UNCHANGED)
    status = Status.CREATED if existing is None else Status.UPDATED
    if dry_run or checkout is None:
        return dataclasses.replace(p, status=status)
    commit = checkout.propose_on_branch(p.branch, p.text, f"{p.title}\n\n{p.body}")
    return dataclasses.replace(p, status=status, commit=commit.sha)
