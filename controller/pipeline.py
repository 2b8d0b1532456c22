"""The steps of the pipeline that commands share: find the registry, plan with gates, read the file's history,
say what decided each write, render a plan."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import declare, desired, gates, paths, planner, unity, uris
from .changes import diff, last_changed
from .errors import ConfigError, Problem, RegistryError
from .gitops import Checkout, Commit, GitError, Provenance, run_url
from .model import DesiredModel, DesiredState, LiveState, Plan
from .output import Output
from .reporters import json as json_report
from .reporters import markdown, text

if TYPE_CHECKING:  # importing the registry module loads mlflow: only when a command needs it
    from .registry import Registry


def select(state: DesiredState, models: Collection[str], *, strict: bool = True) -> DesiredState:
    """The file limited to some of its models (`--model`, Terraform's -target); all of it when none are named.

    Strict: a name the file does not declare is an error (with the closest names), not an empty run.
    """
    if not models:
        return state
    declared = [m.name for m in state.models]
    unknown = sorted(set(models) - set(declared))
    if strict and unknown:
        raise ConfigError(tuple(Problem(state.path, _not_declared(name, declared)) for name in unknown))
    return replace(state, models=tuple(m for m in state.models if m.name in models), only=tuple(sorted(set(models))))


def _not_declared(name: str, declared: list[str]) -> str:
    close = difflib.get_close_matches(name, declared, n=3)
    hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close
            else f"it declares {', '.join(declared[:10])}{', …' if len(declared) > 10 else ''}" if declared
            else "it declares no models")
    return f"--model {name!r}: the file declares no such model; {hint}"


def refuse_misread_saved_plan(argument: Path, file: Path, models: Collection[str]) -> None:
    """`apply X` takes a saved plan; people used to Terraform or Argo CD also try a model's name there."""
    if models:
        raise ConfigError((Problem(str(argument), "--model cannot limit a saved plan: apply runs exactly the "
                                   "steps saved in it. Save a plan made with plan --model instead"),))
    if argument.is_file():
        return
    try:
        declared = [m.name for m in desired.load(file).models]
    except ConfigError:
        return
    if str(argument) in declared:
        raise ConfigError((Problem(str(argument), f"not a saved plan file, but {file} declares a model of that "
                                   f"name; to apply only that model, run: stagectl apply --model {argument}"),))


def connect(state: DesiredState | None, given: uris.Given, out: Output, unity_lease: str | None = None) -> Registry:
    """The registry a command works on, found as MLflow finds it (uris.locate); every command asks here.

    A file applied to Unity Catalog must follow its rules (unity.check), also when only the URI says so.
    `unity_lease`: the lease's model in Unity Catalog, when there is no file to place it by (a saved plan).
    """
    where = uris.locate(given, state.tracking_uri if state else None, state.registry_uri if state else None)
    out.also_hide(where.registry_uri)
    out.also_hide(where.tracking_uri)
    if state is not None and unity.expected(state, where.registry_uri):
        unity.check(state)
        unity_lease = unity.lease_model(m.name for m in state.models)
    from .registry import Registry

    return Registry(where.registry_uri, where.tracking_uri, unity_lease=unity_lease)


def owner(state: DesiredState, file: Path) -> str:
    """Who manages the file's models: its `owner:` key, else its repository and path, else its path."""
    if state.owner:
        return state.owner
    checkout = Checkout.find(file)
    return checkout.identity() if checkout else file.resolve().as_posix()


def known_names(state: DesiredState, live: LiveState, registry: Registry) -> list[str]:
    """The registry's model names, to suggest for a model the file names and the registry lacks: one more
    request, made only then (a few more in a registry of more than one page of models; none when every model
    is there, or kept from these credentials)."""
    missing = [m.name for m in state.models if m.name not in live.models and m.name not in live.hidden]
    if not missing:
        return []
    with contextlib.suppress(RegistryError):  # the suggestion is a courtesy: the problem stands without it
        return registry.model_names(missing)
    return []


def checked_plan(state: DesiredState, live: LiveState, registry: Registry, *, file: Path,
                 before: DesiredState | None = None, base: str | None = None,
                 max_changes: int | None = None, staged: Staged | None = None,
                 adopt: frozenset[str] = frozenset(), evidence: gates.Evidence | None = None) -> Plan:
    """The plan with its gates; a model the registry cannot take as declared is held in it, alone.

    `staged` (see staged_before) may be passed by a caller that plans more than once from one file. The file's
    git history is read only when a promote_from gate cannot be decided without it.
    Models another stages file manages are changed only when `adopt` names them. `evidence` (see evidence)
    may be passed by a caller that already read the runs its metric gates need.
    """
    if staged is None:
        staged = staged_before(file, state, before, base)
    who = owner(state, file)
    known = known_names(state, live, registry)
    found = evidence or gates.Evidence(now_ms=int(time.time() * 1000))

    def planned(before: Mapping[str, Mapping[str, str]] | None) -> Plan:
        return planner.plan(state, live, registry.display_uri, staged_before=before, max_changes=max_changes,
                            owner=who, adopt=adopt, known=known, evidence=found)

    result = planned(staged.known)
    # The metric gates of the models that promote read their runs: only then, one request per run.
    gated = {c.model for c in result.checks if c.gate == "metrics"}
    if gated and evidence is None:
        found = read_evidence([m for m in state.models if m.name in gated], live, registry)
        result = planned(staged.known)
    if staged.known is None and any(c.gate == "promote_from" and not c.ok for c in result.checks):
        result = planned(staged.get())
    unrecorded = {c.model for c in result.checks if c.gate == "soak" and not c.ok and c.model and c.version
                  and gates.STAGED_TAG not in live.models[c.model].versions[c.version].tags}
    if unrecorded and found.declared_staging is None:  # the file's history may know when they were staged
        found = dataclasses.replace(found, declared_staging=declared_staging(file, unrecorded))
        result = planned(staged.known)
    return result


def declared_staging(file: Path, models: Collection[str]) -> dict[str, dict[str, tuple[int, str]]]:
    """Since when each version was last declared in staging without a break, by the file's git history; empty
    when there is no history to read (outside git, or a shallow clone that cannot be deepened)."""
    checkout = Checkout.find(file)
    if checkout is None:
        return {}
    try:
        revisions = history(checkout, "the soak gate")
    except GitError:
        return {}
    found: dict[str, dict[str, tuple[int, str]]] = {}
    started: set[tuple[str, str]] = set()
    ended: set[tuple[str, str]] = set()
    # Newest first, from the file as it is (or as it was one commit before: a pull request's own commit may
    # have moved the version on) back to the commit that put it there. The committer date: when the change was
    # merged, which a pull request's author does not choose.
    for n, revision in enumerate(revisions):
        after = {m.name: m for m in revision.after.models} if revision.after else {}
        when = int(datetime.fromisoformat(revision.commit.committed or revision.commit.date).timestamp() * 1000)
        for name in models:
            declared = {(name, v) for v in (after[name].staging or ())} if name in after else set()
            ended |= {key for key in started - declared if key[0] == name}
            for key in declared - ended:
                if n > 1 and key not in started:
                    continue  # declared in staging long ago, not now: its time there then does not count
                started.add(key)
                found.setdefault(name, {})[key[1]] = (when, revision.commit.sha)
    return found


def read_evidence(models: Iterable[DesiredModel], live: LiveState, registry: Registry) -> gates.Evidence:
    """What the metric gates of these models read: their candidates' and production's runs, one request each."""
    runs = sorted({run for m in models if m.name in live.models for run in gates.runs_needed(m, live.models[m.name])})
    return gates.Evidence(registry.run_metrics(runs) if runs else {}, int(time.time() * 1000))


class Staged:
    """Where each version was last declared in staging: on the base ref, else in the file's git history, which
    is read on first use only (a shallow clone may not have it)."""

    def __init__(self, file: Path, state: DesiredState, before: DesiredState | None, base: str | None) -> None:
        self._file = file
        self.known: dict[str, dict[str, str]] | None = None
        if not any(m.policy.promote_from == "staging" for m in state.models):
            self.known = {}
        elif before is not None and base is not None:
            self.known = {m.name: dict.fromkeys(m.staging or (), base) for m in before.models}

    def get(self) -> dict[str, dict[str, str]]:
        if self.known is None:
            checkout = Checkout.find(self._file)
            found: dict[str, dict[str, str]] = {}
            for revision in history(checkout, "the promote_from gate") if checkout else ():
                for model in revision.after.models if revision.after else ():
                    for version in model.staging or ():
                        found.setdefault(model.name, {}).setdefault(version, f"commit {revision.commit.sha[:7]}")
            self.known = found
        return self.known


def staged_before(file: Path, state: DesiredState, before: DesiredState | None, base: str | None) -> Staged:
    return Staged(file, state, before, base)


@dataclass(frozen=True, slots=True)
class Revision:
    """One commit that changed the stages file, with the file parsed before and after it."""

    commit: Commit
    before: DesiredState | None  # None: the file did not exist (or did not validate: see readable)
    after: DesiredState | None
    readable: bool  # False when the file did not validate at this commit or its parent
    after_text: str | None


_histories: dict[Path, tuple[Revision, ...]] = {}


def forget_history() -> None:
    """For a process that runs the pipeline again after the checkout moved (webhook serve)."""
    _histories.clear()


def history(checkout: Checkout, needed_for: str) -> tuple[Revision, ...]:
    """The stages file's git history, parsed, newest first: walked once per run however many steps ask for it
    (the history cannot change while a command runs). Raises gitops.ShallowCloneError when it is cut off."""
    key = checkout.root / checkout.path
    if key not in _histories:
        parsed: dict[str, DesiredState | ConfigError] = {}

        def load(text: str | None, commit: Commit) -> DesiredState | None:
            if text is None:
                return None
            if text not in parsed:
                try:
                    parsed[text] = desired.parse(text, f"{commit.sha[:7]}:{checkout.path}")
                except ConfigError as e:
                    parsed[text] = e
            found = parsed[text]
            if isinstance(found, ConfigError):
                raise found
            return found

        revisions = []
        for commit, before, after in checkout.history(needed_for):
            try:
                revisions.append(Revision(commit, load(before, commit), load(after, commit), True, after))
            except ConfigError:
                revisions.append(Revision(commit, None, None, False, after))
        _histories[key] = tuple(revisions)
    return _histories[key]


def provenance_of(file: Path, state: DesiredState, allow_dirty: bool, models: Iterable[str] | None = None,
               outside: str | None = None) -> Provenance:
    """What decided each model's declaration (the last commit that changed it) and the commit checked out.

    Refuses a file outside git, or with uncommitted changes, unless allowed; then the tags say so. `models`
    limits the history walk to those models (all of the file's by default).
    """
    checkout = Checkout.find(file)
    if checkout is None or not checkout.has_commits():
        if not allow_dirty:
            where = "not in a git checkout" if checkout is None else "in a git repository with no commits"
            raise GitError(f"{file} is {where}: what reaches the registry must be a commit (run from a clone of "
                           "the repository that holds it, or pass --allow-dirty to go ahead, recorded as applied "
                           "outside git)")
        unknown = Provenance(None, run_url=run_url())
        return dataclasses.replace(unknown, outside=outside) if outside else unknown
    dirty = checkout.is_dirty()
    if dirty and not allow_dirty:
        raise GitError(f"{file} has uncommitted changes: what reaches the registry must be a commit "
                       "(commit the change, or pass --allow-dirty)")
    names = [m.name for m in state.models] if models is None else list(models)
    readable = [(r.commit, r.before, r.after) for r in history(checkout, "recording the commit behind each write")
                if r.readable] if names else []
    decided = last_changed(readable, names)
    uncommitted: frozenset[str] = frozenset()
    if dirty:
        text_at_head = checkout.read_at("HEAD")
        try:
            at_head = desired.parse(text_at_head, f"HEAD:{checkout.path}") if text_at_head else None
        except ConfigError:
            at_head = None
        uncommitted = frozenset(c.model for c in diff(at_head, state) if c.model is not None)
    return Provenance(checkout.head(), decided, uncommitted, run_url(), web=checkout.web_url())


def render(plan: Plan, fmt: str, source: str, out: Output) -> str:
    if fmt == "json":
        return json_report.render_plan(plan)
    if fmt == "markdown":
        return markdown.render_plan(plan, source)
    return text.render_plan(plan, source, color=out.color)


def from_registry(models: list[str], given: uris.Given, out: Output, by: str = "stagectl export") \
        -> tuple[LiveState, str]:
    """The named models (all when none) as the registry holds them, and the stages file that declares that."""
    registry = connect(None, given, out)
    live = registry.read(models or None)
    missing = sorted(set(models) - set(live.models))
    if missing:
        raise ConfigError(tuple(Problem(registry.display_uri, f"model '{m}' " + (
            planner.absent(m, hidden=True) if m in live.hidden else "does not exist")) for m in missing))
    text = declare.render(live, registry.display_uri, by)
    desired.parse(text, "exported stages.yaml")  # what we write must be what we read
    return live, text


def read_for_edit(file: Path, branch: str | None) -> tuple[str, Checkout | None]:
    """The stages file's text, to edit and then write back (or commit on `branch`): refused before any change
    when the file cannot be written, or when --branch would carry someone's uncommitted edits along."""
    paths.check_read(file)
    paths.check_write(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError((Problem(str(file), "file not found"),)) from None
    checkout = Checkout(file) if branch else None
    if checkout is not None and checkout.is_dirty():
        raise GitError(f"{file} has uncommitted changes; commit or stash them before --branch")
    return text, checkout


def write_edit(file: Path, new: str, message: str, checkout: Checkout | None, branch: str | None,
               out: Output) -> None:
    """Write an edited stages file, or commit it on a new branch ready for a pull request."""
    if checkout is not None and branch is not None:
        commit = checkout.commit_on_new_branch(branch, new, message)
        out.info(f"{message}: committed {commit.sha[:7]} on new branch '{branch}'")
    else:
        file.write_text(new, encoding="utf-8")
        out.info(f"{message}: {file} updated")
