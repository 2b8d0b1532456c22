"""The applier's ordering and failure handling, on an in-memory registry (the real one: tests/e2e)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from hypothesis import given, settings

from controller import applier, lease, planner
from controller.errors import RegistryError
from controller.gates import STAGED_TAG
from controller.model import DesiredModel, LiveModel, LiveState, Plan, SetAlias, Stage, Status, Transition
from tests.factories import A, N, P, S, live_model, simulate
from tests.test_planner import scenarios


class MemoryRegistry:
    """Behaves like MLflow for transitions and aliases; can be told to fail or lie about one write."""

    def __init__(self, *models: LiveModel, fail: tuple[str, str] | None = None,
                 ignore: tuple[str, str] | None = None) -> None:
        self.models = {m.name: m for m in models}
        self.fail, self.ignore = fail, ignore
        self.writes: list[tuple[str, str]] = []
        self.tags: dict[tuple[str, str], dict[str, str]] = {}
        self.model_tags: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()

    def transition(self, model: str, version: str, stage: Stage, archive_existing: bool) -> Stage:
        with self.lock:
            self.writes.append((model, version))
            if self.fail == (model, version):
                raise RegistryError("registry answered PERMISSION_DENIED: not allowed", code="PERMISSION_DENIED")
            if self.ignore != (model, version):
                step = Transition(model, version, Stage.NONE, stage, archive_existing_versions=archive_existing)
                self.models[model] = simulate(self.models[model], [step])
            return self.models[model].versions[version].stage

    def stage_of(self, model: str, version: str) -> Stage:
        return self.models[model].versions[version].stage

    def set_alias(self, model: str, alias: str, version: str) -> None:
        with self.lock:
            self.writes.append((model, alias))
            self.models[model] = simulate(self.models[model], [SetAlias(model, alias, version)])

    def alias_target(self, model: str, alias: str) -> str:
        return self.models[model].aliases[alias]

    def read(self, names: object) -> LiveState:
        return LiveState(dict(self.models))

    def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        with self.lock:
            if self.fail == (model, "tags"):
                raise RegistryError("registry answered PERMISSION_DENIED: tags")
            self.tags.setdefault((model, version), {}).update(tags)

    def mark_managed(self, model: str, tags: Mapping[str, str]) -> None:
        with self.lock:
            self.writes.append((model, "owner"))
            if self.fail == (model, "owner"):
                raise RegistryError("registry answered PERMISSION_DENIED: not allowed", code="PERMISSION_DENIED")
            self.model_tags.setdefault(model, {}).update(tags)


STORY = (
    Transition("a", "1", P, A, archived_by="2"),
    Transition("a", "2", S, P, archive_existing_versions=True),
    SetAlias("a", "champion", "2", "1"),
    Transition("b", "3", N, S),
    Transition("b", "4", N, P),
)


def registry(**kwargs: tuple[str, str]) -> MemoryRegistry:
    return MemoryRegistry(live_model("a", {1: P, 2: S}, {"champion": 1}), live_model("b", {3: N, 4: N}), **kwargs)


def test_applies_every_step_in_order_and_performs_archives_through_the_promotion() -> None:
    memory = registry()
    result = applier.apply(Plan("u", STORY), memory, parallelism=4)
    assert result.ok
    assert [o.status for o in result.outcomes] == [Status.APPLIED] * 5
    assert memory.models["a"].in_stage(P) == {"2"} and memory.models["a"].in_stage(A) == {"1"}
    # Version 1 was never written on its own: its promotion archived it.
    assert [w for w in memory.writes if w[0] == "a"] == [("a", "2"), ("a", "champion")]
    assert result.final is not None and result.final.models["a"].aliases == {"champion": "2"}


class LeakyErrors(MemoryRegistry):
    """Fails a transition the way an HTTP library may: an unexpected exception that quotes the request."""

    def transition(self, model: str, version: str, stage: Stage, archive_existing: bool) -> Stage:
        raise RuntimeError("POST /api/2.0/mlflow/model-versions/transition-stage failed: headers="
                           "{'Authorization': 'Bearer tok-canary-9931', 'X-Other': 'Basic dXNlcjpwdzEyMzQ1Njc4'} "
                           "url=https://b.blob.core.windows.net/m?sv=2024-11-04&sig=c2lnLWNhbmFyeQ%3D%3D")


def test_a_step_failed_by_an_unexpected_exception_reports_it_with_credentials_masked() -> None:
    result = applier.apply(Plan("u", STORY[3:]), LeakyErrors(live_model("b", {3: N, 4: N})))
    error = result.outcomes[0].error
    assert result.outcomes[0].status is Status.FAILED and error is not None
    assert error.startswith("unexpected RuntimeError: POST /api/2.0/mlflow/model-versions/transition-stage")
    for secret in ("tok-canary-9931", "dXNlcjpwdzEyMzQ1Njc4", "c2lnLWNhbmFyeQ", "2024-11-04"):
        assert secret not in error
    assert "'Authorization': 'Bearer ***'" in error and "sig=***" in error


class LyingAliases(MemoryRegistry):
    """Accepts alias writes but never keeps them: only the read-back can tell."""

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self.writes.append((model, alias))


def test_an_alias_the_read_back_does_not_show_fails_its_step() -> None:
    memory = LyingAliases(live_model("a", {1: P, 2: S}, {"champion": 1}), live_model("b", {3: N, 4: N}))
    result = applier.apply(Plan("u", STORY), memory)
    assert [o.status for o in result.outcomes] == [Status.APPLIED, Status.APPLIED, Status.FAILED,
                                                   Status.APPLIED, Status.APPLIED]
    assert result.outcomes[2].error == "the registry shows alias 'champion' on version 1, not 2"


def test_a_failed_step_skips_the_rest_of_its_model_and_other_models_go_on() -> None:
    memory = registry(fail=("a", "2"))
    result = applier.apply(Plan("u", STORY), memory, parallelism=2)
    assert not result.ok
    assert [o.status for o in result.outcomes] == [
        Status.SKIPPED, Status.FAILED, Status.SKIPPED, Status.APPLIED, Status.APPLIED]
    assert result.outcomes[1].error == "registry answered PERMISSION_DENIED: not allowed"
    assert result.outcomes[2].error == applier.NOT_ATTEMPTED
    assert memory.models["a"].in_stage(P) == {"1"}  # untouched: still served by version 1


def test_a_write_the_registry_does_not_show_fails_the_step() -> None:
    memory = registry(ignore=("b", "3"))
    result = applier.apply(Plan("u", STORY), memory)
    assert [o.status for o in result.outcomes][3:] == [Status.FAILED, Status.SKIPPED]
    assert result.outcomes[3].error == "the registry shows version 3 in None, not Staging"


def test_outcomes_are_reported_as_they_complete() -> None:
    seen: list[str] = []
    applier.apply(Plan("u", STORY), registry(), on_outcome=lambda o: seen.append(o.step.model))
    assert sorted(seen) == ["a", "a", "a", "b", "b"]


def test_every_version_put_in_service_gets_its_models_provenance_once() -> None:
    memory = registry()
    before = time.time()
    applier.apply(Plan("u", STORY), memory, tags={"a": {"stagectl.commit": "abc"}, "b": {"stagectl.commit": "def"}})
    # Version 3 of b enters staging: when, is what a soak gate counts from.
    entered = memory.tags[("b", "3")].pop("stagectl.staged_at")
    assert before - 1 <= datetime.strptime(entered, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() <= time.time()
    # Version 2 of a: promoted and aliased, tagged once; version 1, archived, keeps what it had.
    assert memory.tags == {("a", "2"): {"stagectl.commit": "abc"}, ("b", "3"): {"stagectl.commit": "def"},
                           ("b", "4"): {"stagectl.commit": "def"}}


def test_a_tag_failure_fails_the_step_that_wrote() -> None:
    memory = registry(fail=("b", "tags"))
    result = applier.apply(Plan("u", STORY), memory, tags={"b": {"stagectl.commit": "abc"}})
    assert [o.status for o in result.outcomes][3:] == [Status.FAILED, Status.SKIPPED]
    assert result.outcomes[3].error == ("written, but its provenance tags could not be set: "
                                        "registry answered PERMISSION_DENIED: tags")


class Flaky(MemoryRegistry):
    """Fails the first `failures` transitions: before the write, or (lost_reply) after committing it."""

    def __init__(self, failures: int, *, lost_reply: bool = False, permanent: bool = False) -> None:
        super().__init__(live_model("a", {1: P, 2: S}))
        self.failures, self.lost_reply, self.permanent = failures, lost_reply, permanent
        self.attempts = 0

    def transition(self, model: str, version: str, stage: Stage, archive_existing: bool) -> Stage:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            if self.lost_reply:
                super().transition(model, version, stage, archive_existing)
            raise RegistryError("cannot reach the registry: connection dropped", transient=not self.permanent)
        return super().transition(model, version, stage, archive_existing)


PROMOTE = Plan("u", (Transition("a", "1", P, A, archived_by="2"),
                     Transition("a", "2", S, P, archive_existing_versions=True)))


def test_transient_failures_are_retried_with_growing_delays() -> None:
    flaky, slept = Flaky(2), []
    result = applier.apply(PROMOTE, flaky, sleep=slept.append, retry=applier.RetryPolicy(attempts=3, jitter=0))
    assert result.ok and flaky.attempts == 3 and slept == [0.5, 1.0]


def test_a_write_whose_reply_was_lost_is_read_back_not_repeated() -> None:
    flaky = Flaky(1, lost_reply=True)
    result = applier.apply(PROMOTE, flaky, sleep=lambda s: None)
    assert result.ok and flaky.attempts == 1
    assert flaky.models["a"].in_stage(P) == {"2"}


def test_permanent_failures_are_not_retried_and_retries_are_bounded() -> None:
    permanent = Flaky(1, permanent=True)
    assert not applier.apply(PROMOTE, permanent, sleep=lambda s: None).ok and permanent.attempts == 1
    stubborn = Flaky(10)
    result = applier.apply(PROMOTE, stubborn, sleep=lambda s: None, retry=applier.RetryPolicy(attempts=3))
    assert not result.ok and stubborn.attempts == 3
    assert result.outcomes[1].error == "cannot reach the registry: connection dropped"


def test_a_swap_reads_the_archive_back_before_moving_that_version_again() -> None:
    swap = Plan("u", (Transition("a", "1", P, A, archived_by="2"),
                      Transition("a", "2", S, P, archive_existing_versions=True),
                      Transition("a", "1", A, S)))
    memory = MemoryRegistry(live_model("a", {1: P, 2: S}))
    result = applier.apply(swap, memory)
    assert result.ok, result.outcomes
    assert memory.models["a"].in_stage(P) == {"2"} and memory.models["a"].in_stage(S) == {"1"}


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_applying_any_plan_succeeds_verifies_and_reaches_the_file(scenario: tuple[LiveModel, DesiredModel]) -> None:
    have, wanted = scenario
    memory = MemoryRegistry(have)
    result = applier.apply(Plan("u", tuple(planner.plan_model(wanted, have))), memory)
    assert result.ok, [o for o in result.outcomes if o.status is not Status.APPLIED]
    assert planner.plan_model(wanted, memory.models[have.name]) == []


class Fence:
    """Allows `writes` writes, then says the lease is lost, as a holder paused past its TTL would find."""

    def __init__(self, writes: int) -> None:
        self.left = writes
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            if self.left <= 0:
                raise lease.LeaseLostError("lease lost: not renewed in time")
            self.left -= 1


def test_after_the_lease_is_lost_nothing_more_is_written_and_every_step_left_is_skipped() -> None:
    memory = registry()
    result = applier.apply(Plan("u", STORY), memory, fence=Fence(1))  # one model at a time: "a" goes first
    assert memory.writes == [("a", "2")]
    assert [o.status for o in result.outcomes] == [
        Status.APPLIED, Status.APPLIED, Status.SKIPPED, Status.SKIPPED, Status.SKIPPED]
    assert all(o.error == "lease lost: not renewed in time" for o in result.outcomes[2:])
    assert not result.ok


def test_the_fence_is_checked_before_every_retry_too() -> None:
    flaky = Flaky(1)
    result = applier.apply(PROMOTE, flaky, sleep=lambda s: None, fence=Fence(1))
    assert flaky.attempts == 1 and not result.ok
    assert result.outcomes[1].status is Status.SKIPPED and "lease lost" in str(result.outcomes[1].error)


def test_ownership_is_each_models_first_write_and_a_refusal_holds_only_that_model() -> None:
    memory = registry(fail=("a", "owner"))
    owner = {"stagectl.owner": "repo:stages.yaml"}
    result = applier.apply(Plan("u", STORY), memory, model_tags={"a": owner, "b": owner})
    assert [w for w in memory.writes if w[0] == "a"] == [("a", "owner")]  # nothing of "a" after the refusal
    assert [w for w in memory.writes if w[0] == "b"] == [("b", "owner"), ("b", "3"), ("b", "4")]
    assert [o.status for o in result.outcomes] == [
        Status.SKIPPED, Status.FAILED, Status.SKIPPED, Status.APPLIED, Status.APPLIED]
    assert "PERMISSION_DENIED" in str(result.outcomes[1].error)
    assert memory.model_tags == {"b": owner}


class ArchivesNothing(MemoryRegistry):
    """Promotes, but ignores archive_existing_versions: only the read-back can tell."""

    def transition(self, model: str, version: str, stage: Stage, archive_existing: bool) -> Stage:
        return super().transition(model, version, stage, False)


def test_a_promotion_that_archived_nothing_fails_the_archive_it_was_to_perform() -> None:
    memory = ArchivesNothing(live_model("a", {1: P, 2: S}))
    result = applier.apply(PROMOTE, memory)
    assert [o.status for o in result.outcomes] == [Status.FAILED, Status.APPLIED]
    assert result.outcomes[0].error == "the registry shows version 1 in Production, not Archived"


class AnotherWriter(MemoryRegistry):
    """Before our promotion lands, someone else promotes version 3: ours then archives it too."""

    def transition(self, model: str, version: str, stage: Stage, archive_existing: bool) -> Stage:
        if version == "2":
            self.models[model] = simulate(self.models[model], [Transition(model, "3", S, P)])
        return super().transition(model, version, stage, archive_existing)


def test_an_effect_the_plan_did_not_lead_to_is_reported_and_no_archive_is_credited() -> None:
    before = live_model("a", {1: P, 2: S, 3: S})
    memory = AnotherWriter(before)
    result = applier.apply(PROMOTE, memory, live=LiveState({"a": before}))
    assert memory.models["a"].in_stage(A) == {"1", "3"}
    assert result.unexpected == {"a": ("version 3 is in Archived, where this apply should have left it in Staging",)}
    assert not result.ok
    from controller.reporters import notes, text

    assert notes(PROMOTE.steps, result.unexpected.keys()) == ["", ""]
    rendered = text.render_result(result)
    assert "atomic" not in rendered and "Unexpected: a: version 3 is in Archived" in rendered


def test_provenance_a_version_already_carries_is_not_written_again() -> None:
    import dataclasses

    from controller.model import LiveVersion

    before = live_model("a", {1: P, 2: S})
    carried = dataclasses.replace(before, versions={**before.versions, "2": LiveVersion(
        "2", S, tags={"stagectl.commit_author": "Ana <ana@example.com>"})})
    memory = MemoryRegistry(carried)
    tags = {"stagectl.commit": "abc", "stagectl.commit_author": "Ana <ana@example.com>"}
    assert applier.apply(PROMOTE, memory, tags={"a": tags}, live=LiveState({"a": carried})).ok
    assert memory.tags == {("a", "2"): {"stagectl.commit": "abc"}}


def test_a_version_entering_staging_by_alias_and_by_stage_records_its_entry_once() -> None:
    entries: list[str] = []

    class Counting(MemoryRegistry):
        def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
            entries.extend(v for k, v in tags.items() if k == STAGED_TAG)
            super().set_tags(model, version, tags)

    memory = Counting(live_model("b", {3: N}))
    steps = (SetAlias("b", "staging", "3", None, stands_for=S), Transition("b", "3", N, S))  # both mode
    result = applier.apply(Plan("u", steps), memory, tags={"b": {"stagectl.commit": "abc"}})
    assert result.ok and len(entries) == 1
