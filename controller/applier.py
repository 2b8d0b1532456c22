"""Execute a plan: models concurrently, each model's steps in order, every write read back and verified.

A transition's response is its own read-back. What a response cannot show (the versions a promotion
archived, an alias moved) is read back for all models at once after the last write: one bulk read instead
of a request per step. That read-back is also compared with what the plan should have led to: an effect
nobody planned (another writer changed the model meanwhile) is reported, never explained away.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from . import uris
from .errors import ControllerError, RegistryError
from .gates import STAGED_TAG, staged_at
from .lease import LeaseLostError
from .lifecycle import ARCHIVED_TAG, LIFECYCLE_TAG, is_archived, tag_value
from .model import (
    ApplyResult,
    DeleteAlias,
    LiveModel,
    LiveState,
    MarkArchived,
    Outcome,
    Plan,
    SetAlias,
    SetLifecycle,
    Stage,
    Status,
    Step,
    Transition,
)

NOT_ATTEMPTED = "not attempted: an earlier step of this model failed"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a write that fails transiently is tried again: bounded, exponential, jittered."""

    attempts: int = 3
    delay: float = 0.5  # before the second attempt; doubles each time
    max_delay: float = 4.0
    jitter: float = 0.5  # up to this fraction of the delay, added at random

    def delays(self) -> list[float]:
        return [min(self.max_delay, self.delay * 2**i) * (1 + random.uniform(0, self.jitter))
                for i in range(self.attempts - 1)]


T = TypeVar("T")


class Writer(Protocol):
    """What the applier needs of a registry (registry.Registry in production)."""

    def transition(self, model: str, version: str, stage: Stage, archive_existing: bool) -> Stage: ...
    def stage_of(self, model: str, version: str) -> Stage: ...
    def set_alias(self, model: str, alias: str, version: str) -> None: ...
    def delete_alias(self, model: str, alias: str) -> None: ...
    def delete_version_tag(self, model: str, version: str, key: str) -> None: ...
    def alias_target(self, model: str, alias: str) -> str: ...
    def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None: ...
    def mark_managed(self, model: str, tags: Mapping[str, str]) -> None: ...
    def read(self, names: Collection[str] | None) -> LiveState: ...


class VerificationError(ControllerError):
    """A write went through but the registry does not show its result."""


class ProvenanceError(ControllerError):
    """A write went through but the tags saying why could not be set."""


def apply(
    plan: Plan,
    registry: Writer,
    *,
    parallelism: int = 1,
    tags: Mapping[str, Mapping[str, str]] | None = None,
    model_tags: Mapping[str, Mapping[str, str]] | None = None,
    live: LiveState | None = None,
    fence: Callable[[], None] = lambda: None,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    on_outcome: Callable[[Outcome], None] = lambda outcome: None,
) -> ApplyResult:
    """Run every step; a failed step skips the rest of its model, other models go on.

    `tags` (provenance, per model) are set, once, on every version a step puts in a serving stage or points
    an alias at, after its write is verified. A version a step archives keeps the provenance of the apply
    that last put it in service: the tags answer "why is this version serving", and each one is a request.
    `model_tags` (ownership) are set on a model before its first step: they need the same permission as
    the steps, so a model we may not change fails there, with nothing of it written.
    `fence` is called before every write, and raises LeaseLostError once this apply may no longer write:
    then every step not yet run is skipped. `live` is the state the plan was computed against: with it,
    the read-back is also checked for effects the plan did not lead to.
    """
    by_model: dict[str, list[int]] = {}
    for index, step in enumerate(plan.steps):
        by_model.setdefault(step.model, []).append(index)
    outcomes: dict[int, Outcome] = {}
    unverified: dict[int, Step] = {}
    lock = threading.Lock()
    retrying = Retrying(registry, retry, sleep, fence)

    def record(index: int, outcome: Outcome | None, step: Step) -> None:
        with lock:
            if outcome is None:
                unverified[index] = step
                return
            outcomes[index] = outcome
            on_outcome(outcome)

    def run(indexes: list[int]) -> None:
        model = plan.steps[indexes[0]].model
        have = live.models.get(model) if live is not None else None
        _apply_model([(i, plan.steps[i]) for i in indexes], retrying, (tags or {}).get(model, {}),
                     (model_tags or {}).get(model), record, have)

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        for future in [pool.submit(run, indexes) for indexes in by_model.values()]:
            future.result()
    final = None
    if by_model:
        try:
            final = retrying.read(sorted(by_model))
        except Exception as e:  # report each step still unverified; keep every outcome already known
            for index, step in sorted(unverified.items()):
                record(index, Outcome(step, Status.FAILED, f"written, but could not be read back: {_reason(e)}"),
                       step)
    if final is not None:
        for index, step in sorted(unverified.items()):
            record(index, _verified(step, final), step)
    done = tuple(outcomes[i] for i in range(len(plan.steps)))
    unexpected = {}
    if final is not None and live is not None:
        for name in sorted(by_model):
            if name in live.models and name in final.models:
                found = unexpected_effects(live.models[name], [o for o in done if o.step.model == name],
                                           final.models[name])
                if found:
                    unexpected[name] = found
    return ApplyResult(plan.tracking_uri, done, final, unexpected)


def unexpected_effects(before: LiveModel, outcomes: list[Outcome], after: LiveModel) -> tuple[str, ...]:
    """Versions whose stage the read-back shows other than the plan's applied steps lead to from `before`.

    Versions that a step not applied would have moved are left out: their outcome already says so.
    """
    expected = {v: lv.stage for v, lv in before.versions.items()}
    unsure = set()
    for outcome in outcomes:
        if not isinstance(outcome.step, Transition):
            continue
        if outcome.status is Status.APPLIED:
            expected[outcome.step.version] = outcome.step.to_stage
        else:
            unsure.add(outcome.step.version)
    found = []
    for version, seen in sorted(after.versions.items(), key=lambda item: int(item[0])):
        want = expected.get(version)
        if want is not None and version not in unsure and seen.stage is not want:
            found.append(f"version {version} is in {seen.stage}, where this apply should have left it in {want}")
    return tuple(found)


def _verified(step: Step, live: LiveState) -> Outcome:
    model = live.models.get(step.model)
    if model is None:
        return Outcome(step, Status.FAILED, f"the registry shows no model {step.model}")
    if isinstance(step, (SetAlias, DeleteAlias)):
        seen = model.aliases.get(step.alias)
        want = step.version if isinstance(step, SetAlias) else None
        if seen == want:
            return Outcome(step, Status.APPLIED)
        return Outcome(step, Status.FAILED, f"the registry shows alias '{step.alias}' on version {seen or '(none)'}, "
                                            f"not {want or '(none)'}")
    if isinstance(step, SetLifecycle):
        seen_tag = model.tags.get(LIFECYCLE_TAG)
        if seen_tag == tag_value(step.lifecycle):
            return Outcome(step, Status.APPLIED)
        return Outcome(step, Status.FAILED, f"the registry shows {LIFECYCLE_TAG}={seen_tag!r}, "
                                            f"not {tag_value(step.lifecycle)!r}")
    version = model.versions.get(step.version)
    if isinstance(step, MarkArchived):
        if version is not None and is_archived(version) is step.archived:
            return Outcome(step, Status.APPLIED)
        return Outcome(step, Status.FAILED, f"the registry shows version {step.version} "
                                            f"{'without' if step.archived else 'with'} the tag {ARCHIVED_TAG}")
    if version is not None and version.stage is step.to_stage:
        return Outcome(step, Status.APPLIED)
    shown = version.stage if version else "no such version"
    return Outcome(step, Status.FAILED, f"the registry shows version {step.version} in {shown}, not {step.to_stage}")


def _into_staging(step: Step) -> bool:
    if isinstance(step, Transition):
        return step.to_stage is Stage.STAGING and step.from_stage is not Stage.STAGING
    return isinstance(step, SetAlias) and step.stands_for is Stage.STAGING


def _in_service(step: Step) -> str | None:
    """The version a step puts in service (a serving stage, or an alias): it gets the provenance tags."""
    if isinstance(step, SetAlias):
        return step.version
    if isinstance(step, Transition) and step.to_stage in (Stage.PRODUCTION, Stage.STAGING):
        return step.version
    return None


def _apply_model(
    steps: list[tuple[int, Step]], registry: Retrying, tags: Mapping[str, str], model_tags: Mapping[str, str] | None,
    record: Callable[[int, Outcome | None, Step], None], have: LiveModel | None = None,
) -> None:
    halted: str | None = None  # why the rest of this model is not attempted
    tagged: set[str] = set()
    staged: set[str] = set()

    def tag(version: str, model: str, staging: bool) -> None:
        # When it entered staging, once (in both mode its alias and its stage move): what soak counts from.
        entry = {STAGED_TAG: staged_at(int(time.time() * 1000))} if staging and version not in staged else {}
        staged.update([version] if staging else [])
        if (tags or entry) and (version not in tagged or entry):
            carried = have.versions[version].tags if have is not None and version in have.versions else {}
            wanted = {} if version in tagged else {k: v for k, v in tags.items() if carried.get(k) != v}
            try:
                registry.set_tags(model, version, {**wanted, **entry})
            except LeaseLostError:
                raise
            except Exception as e:
                raise ProvenanceError(f"written, but its provenance tags could not be set: {_reason(e)}") from e
            tagged.add(version)

    for index, step in steps:
        if isinstance(step, Transition) and step.archived_by is not None:
            continue  # performed, and recorded, with the promotion that archives it
        covered = [(i, s) for i, s in steps if isinstance(s, Transition) and _archives(step, s)]
        if halted is not None:
            for i, s in [(index, step), *covered]:
                record(i, Outcome(s, Status.SKIPPED, halted), s)
            continue
        written = False
        try:
            if model_tags:
                registry.mark_managed(step.model, model_tags)
                model_tags = None
            _execute(step, registry)
            written = True
            serving = _in_service(step)
            if serving is not None:
                tag(serving, step.model, _into_staging(step))
        except LeaseLostError as e:
            halted = str(e)
            if written:  # the step itself went through; only what follows it is held back
                record(index, Outcome(step, Status.FAILED, f"written, but its provenance tags were not set: {e}"),
                       step)
                for i, s in covered:
                    record(i, None, s)
                continue
            for i, s in [(index, step), *covered]:
                record(i, Outcome(s, Status.SKIPPED, halted), s)
            continue
        except Exception as e:  # one step's failure must not tear down the other models
            halted = NOT_ATTEMPTED
            record(index, Outcome(step, Status.FAILED, _reason(e)), step)
            for i, s in covered:
                record(i, Outcome(s, Status.SKIPPED, NOT_ATTEMPTED), s)
            continue
        # A transition's response shows its result; an alias and the archived versions are read back later,
        # all at once, unless a later step moves that version again: then only now can the archive be seen.
        record(index, Outcome(step, Status.APPLIED) if isinstance(step, Transition) else None, step)
        for i, s in covered:
            if not _moved_again(s, [t for j, t in steps if j > index]):
                record(i, None, s)
                continue
            try:
                _verify_stage(s, registry.stage_of(s.model, s.version))
                record(i, Outcome(s, Status.APPLIED), s)
            except Exception as e:  # the rest of the model must not build on an archive that did not happen
                halted = NOT_ATTEMPTED
                record(i, Outcome(s, Status.FAILED, _reason(e)), s)


class Retrying:
    """The registry, with transient write failures retried, and a write of unknown outcome re-read first."""

    def __init__(self, registry: Writer, policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep,
                 fence: Callable[[], None] = lambda: None) -> None:
        self._registry, self._policy, self._sleep, self._fence = registry, policy, sleep, fence

    def transition(self, model: str, version: str, stage: Stage, archive_existing: bool) -> Stage:
        return self._write(lambda: self._registry.transition(model, version, stage, archive_existing),
                           lambda: self._registry.stage_of(model, version) is stage, lambda: stage)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._write(lambda: self._registry.set_alias(model, alias, version),
                    lambda: self._alias_is(model, alias, version), lambda: None)

    def delete_alias(self, model: str, alias: str) -> None:
        self._write(lambda: self._registry.delete_alias(model, alias), lambda: False, lambda: None)

    def delete_version_tag(self, model: str, version: str, key: str) -> None:
        self._write(lambda: self._registry.delete_version_tag(model, version, key), lambda: False, lambda: None)

    def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():  # one request each, so each behind the fence
            self._write(functools.partial(self._registry.set_tags, model, version, {key: value}), lambda: False,
                        lambda: None)

    def mark_managed(self, model: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._write(functools.partial(self._registry.mark_managed, model, {key: value}), lambda: False,
                        lambda: None)

    def stage_of(self, model: str, version: str) -> Stage:
        return self._retry(lambda: self._registry.stage_of(model, version), lambda: False, lambda: Stage.NONE)

    def alias_target(self, model: str, alias: str) -> str:
        return self._retry(lambda: self._registry.alias_target(model, alias), lambda: False, lambda: "")

    def read(self, names: Collection[str] | None) -> LiveState:
        return self._retry(lambda: self._registry.read(names), lambda: False, lambda: self._registry.read(names))

    def _alias_is(self, model: str, alias: str, version: str) -> bool:
        try:
            return self._registry.alias_target(model, alias) == version
        except RegistryError as e:
            if e.transient:
                raise
            return False  # no such alias yet

    def _write(self, attempt: Callable[[], T], done: Callable[[], bool], result: Callable[[], T]) -> T:
        """A write: each try, first try included, only while the fence allows it."""

        def fenced() -> T:
            self._fence()
            return attempt()

        return self._retry(fenced, done, result)

    def _retry(self, attempt: Callable[[], T], done: Callable[[], bool], result: Callable[[], T]) -> T:
        delays = self._policy.delays()
        while True:
            try:
                return attempt()
            except RegistryError as e:
                if not e.transient or not delays:
                    raise
            # The failed write may have reached the server (a dropped connection after its commit):
            # read what is there before writing again.
            self._sleep(delays.pop(0))
            try:
                if done():
                    return result()
            except RegistryError as e:
                if not e.transient or not delays:
                    raise


def _moved_again(step: Transition, later: list[Step]) -> bool:
    return any(isinstance(t, Transition) and t.version == step.version and t is not step and t.archived_by is None
               for t in later)


def _archives(promoter: Step, step: Transition) -> bool:
    return (
        isinstance(promoter, Transition)
        and promoter.archive_existing_versions
        and step.archived_by == promoter.version
        and step.from_stage is promoter.to_stage
    )


def _execute(step: Step, registry: Retrying) -> None:
    if isinstance(step, Transition):
        # The server answers with the version as it now is: that answer is the read-back.
        after = registry.transition(step.model, step.version, step.to_stage, step.archive_existing_versions)
        _verify_stage(step, after)
    elif isinstance(step, SetAlias):
        registry.set_alias(step.model, step.alias, step.version)
    elif isinstance(step, DeleteAlias):
        registry.delete_alias(step.model, step.alias)
    elif isinstance(step, MarkArchived):
        if step.archived:
            registry.set_tags(step.model, step.version, {ARCHIVED_TAG: "true"})
        else:
            registry.delete_version_tag(step.model, step.version, ARCHIVED_TAG)
    else:
        registry.mark_managed(step.model, {LIFECYCLE_TAG: tag_value(step.lifecycle)})


def _verify_stage(step: Transition, seen: Stage) -> None:
    if seen is not step.to_stage:
        raise VerificationError(f"the registry shows version {step.version} in {seen}, not {step.to_stage}")


def _reason(error: Exception) -> str:
    """A step's failure in words, secrets masked: an unexpected error may quote a request, headers and all."""
    if isinstance(error, ControllerError):
        return uris.scrub(str(error))
    return uris.scrub(f"unexpected {type(error).__name__}: {error}")
