"""The lease protocol on an in-memory registry: fake clocks for the decisions, real threads for the renewer.

The real race, against real servers with paused processes and skewed clocks: tests/e2e/test_lease_safety.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import pytest

from controller import lease
from controller.errors import RegistryError


class Memory:
    """The lease model of a registry, with hooks to play the other apply at chosen moments."""

    def __init__(self) -> None:
        self.tags: dict[str, str] | None = None
        self.deleted = 0
        self.reads = 0
        self.on_read: Callable[[int], None] = lambda n: None
        self.fail_renewals = 0  # how many renewals fail before they work again
        self.fail_drops = 0
        self.renewal_requests: list[int] = []  # how many tags each renewal sent

    def create_lease(self, tags: Mapping[str, str]) -> bool:
        if self.tags is not None:
            return False
        self.tags = dict(tags)
        return True

    def lease_holder(self) -> dict[str, str] | None:
        self.reads += 1
        self.on_read(self.reads)
        return None if self.tags is None else dict(self.tags)

    def renew_lease(self, tags: Mapping[str, str]) -> None:
        self.renewal_requests.append(len(tags))
        if self.fail_renewals:
            self.fail_renewals -= 1
            raise RegistryError("injected", code="TEMPORARILY_UNAVAILABLE", transient=True)
        assert self.tags is not None
        self.tags.update(tags)

    def drop_lease(self) -> None:
        if self.fail_drops:
            self.fail_drops -= 1
            raise RegistryError("HTTP 500", code="INTERNAL_ERROR", transient=True)
        self.tags = None
        self.deleted += 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.on_sleep: Callable[[float], None] = lambda now: None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.on_sleep(self.now)


def other(renewals: int = 0, ttl: float = 300) -> dict[str, str]:
    # Wall-clock fields from a holder whose clock is a year off: they must not matter.
    return {"owner": "ci-run-7", "renewals": str(renewals), "ttl_seconds": f"{ttl:g}",
            "acquired_at": "2027-11-27T10:00:00Z", "renewed_at": "2025-01-01T00:00:00Z", "expires_at": "1"}


def test_the_lease_is_held_for_the_block_and_released_after() -> None:
    memory, clock = Memory(), Clock()
    with lease.held(memory, "me", lease.LeasePolicy(ttl=60), clock=clock, sleep=clock.sleep) as held:
        assert memory.tags is not None
        assert (memory.tags["owner"], memory.tags["renewals"], memory.tags["ttl_seconds"]) == ("me", "0", "60")
        held.check()
    assert memory.tags is None and held.release_error is None


def test_a_renewing_holder_keeps_a_waiter_out_whatever_its_wall_clock_says() -> None:
    memory, clock = Memory(), Clock()
    memory.tags = other(ttl=30)
    count = iter(range(1, 10_000))
    clock.on_sleep = lambda now: memory.tags.update(renewals=str(next(count))) if memory.tags else None
    waited: list[str] = []
    with pytest.raises(lease.LeaseBusyError, match=r"another apply holds the registry lease \(ci-run-7"):
        lease.acquire(memory, "me", lease.LeasePolicy(ttl=30, wait=120), clock=clock, sleep=clock.sleep,
                      on_wait=waited.append)
    assert clock.now - 1000 >= 120  # it waited the whole --lease-wait, far past the holder's TTL
    assert memory.tags is not None and memory.tags["owner"] == "ci-run-7" and memory.deleted == 0
    assert len(waited) == 1 and waited[0].startswith("ci-run-7")


def test_a_record_unchanged_for_a_whole_ttl_on_our_clock_is_taken_over_and_not_before() -> None:
    memory, clock = Memory(), Clock()
    memory.tags = other(renewals=3, ttl=40)
    took: list[float] = []
    clock.on_sleep = lambda now: took.append(now) if memory.tags and memory.tags["owner"] == "me" else None
    held = lease.acquire(memory, "me", lease.LeasePolicy(ttl=300, wait=5), clock=clock, sleep=clock.sleep)
    assert memory.tags is not None and memory.tags["owner"] == "me" and memory.deleted == 1
    # The holder's own TTL (40 s) counts, seen from our first look; --lease-wait (5 s) does not cut it short.
    # took[0] is the end of the settle after the takeover; the last wait may overshoot by its 10 ms floor.
    settle = lease.LeasePolicy(ttl=300).settle
    assert 1040 + settle <= took[0] <= 1040 + settle + 0.01 + 1e-9
    held.check()


def test_a_renewal_between_the_two_reads_of_a_takeover_stops_it() -> None:
    memory, clock = Memory(), Clock()
    memory.tags = other(renewals=3, ttl=10)
    reads_when_stale: list[int] = []

    def renew_just_before_the_second_read(n: int) -> None:
        if clock.now - 1000 >= 10 and not reads_when_stale:
            reads_when_stale.append(n)  # the read that finds it stale; the next one re-checks before deleting
        elif reads_when_stale and n == reads_when_stale[0] + 1 and memory.tags:
            memory.tags["renewals"] = "4"

    memory.on_read = renew_just_before_the_second_read
    with pytest.raises(lease.LeaseBusyError):
        lease.acquire(memory, "me", lease.LeasePolicy(ttl=10, wait=15), clock=clock, sleep=clock.sleep)
    assert memory.deleted == 0 and memory.tags is not None and memory.tags["owner"] == "ci-run-7"


def test_a_rival_taking_over_during_our_settle_wins_and_we_wait() -> None:
    memory, clock = Memory(), Clock()
    memory.tags = other(ttl=10)
    policy = lease.LeasePolicy(ttl=10, wait=12)
    rival = {"owner": "rival", "renewals": "0", "ttl_seconds": "10"}

    def rival_deletes_ours_and_renews(now: float) -> None:
        if memory.tags and memory.tags["owner"] == "me":
            memory.tags = dict(rival)  # it read the stale record before our delete, and deleted ours
        elif memory.tags and memory.tags["owner"] == "rival":
            memory.tags["renewals"] = str(int(memory.tags["renewals"]) + 1)

    clock.on_sleep = rival_deletes_ours_and_renews
    with pytest.raises(lease.LeaseBusyError, match="rival"):
        lease.acquire(memory, "me", policy, clock=clock, sleep=clock.sleep)


def test_the_holder_judges_its_lease_by_its_own_clock_from_its_last_renewal() -> None:
    memory, clock = Memory(), Clock()
    policy = lease.LeasePolicy(ttl=60)  # lost 40 s after the last renewal was sent
    held = lease.acquire(memory, "me", policy, clock=clock, sleep=clock.sleep)
    clock.now += 39
    held.check()
    held.renew()  # sent at 1039: good until 1079
    clock.now += 39.9
    held.check()
    clock.now += 0.2
    with pytest.raises(lease.LeaseLostError, match="lease lost"):
        held.check()
    with pytest.raises(lease.LeaseLostError):
        held.renew()  # a lost lease is never renewed: the record may be someone else's now
    assert memory.tags is not None and memory.tags["renewals"].startswith("1, last at ")
    assert memory.renewal_requests == [1]  # a renewal is one request: a pause cannot split it


def test_a_renewal_that_answers_late_does_not_revive_a_lost_lease() -> None:
    memory, clock = Memory(), Clock()
    held = lease.acquire(memory, "me", lease.LeasePolicy(ttl=60), clock=clock, sleep=clock.sleep)
    original = memory.renew_lease

    def slow(tags: Mapping[str, str]) -> None:
        clock.now += 100  # the request hung (or we were paused) past the lease
        original(tags)

    memory.renew_lease = slow  # type: ignore[method-assign]
    held.renew()
    with pytest.raises(lease.LeaseLostError):
        held.check()


def test_the_renewer_retries_failed_renewals_and_keeps_the_lease() -> None:
    memory = Memory()
    policy = lease.LeasePolicy(ttl=0.9, poll=0.01)  # renew every 0.15 s, lost 0.6 s after the last renewal
    with lease.held(memory, "me", policy) as held:
        memory.fail_renewals = 2  # two in a row fail; retried within the margin
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            held.check()
            time.sleep(0.02)
        assert int(memory.tags["renewals"].split(",")[0]) >= 6 if memory.tags else False
    assert memory.tags is None


def test_a_holder_that_cannot_renew_loses_its_lease_and_does_not_release_it() -> None:
    memory = Memory()
    policy = lease.LeasePolicy(ttl=0.6, poll=0.01)
    with lease.held(memory, "me", policy) as held:
        memory.fail_renewals = 10**6
        time.sleep(0.5)
        with pytest.raises(lease.LeaseLostError):
            held.check()
    assert memory.tags is not None and memory.tags["owner"] == "me" and memory.deleted == 0


def test_release_is_retried_and_a_failure_is_reported_not_raised() -> None:
    memory, clock = Memory(), Clock()
    memory.fail_drops = 1
    with lease.held(memory, "me", lease.LeasePolicy(ttl=600), clock=clock, sleep=clock.sleep) as held:
        pass
    assert memory.tags is None and held.release_error is None  # one 500, then released

    memory.fail_drops = 10
    with lease.held(memory, "me", lease.LeasePolicy(ttl=600), clock=clock, sleep=clock.sleep) as held:
        pass
    assert held.release_error is not None and "HTTP 500" in held.release_error
    assert memory.tags is not None and memory.tags["owner"] == "me"


def test_a_lease_taken_over_meanwhile_is_not_deleted_by_us() -> None:
    memory, clock = Memory(), Clock()
    with lease.held(memory, "me", lease.LeasePolicy(ttl=600), clock=clock, sleep=clock.sleep):
        memory.tags = {"owner": "someone-else", "renewals": "0"}
    assert memory.tags == {"owner": "someone-else", "renewals": "0"}


def test_our_own_create_whose_reply_was_lost_is_recognised() -> None:
    memory, clock = Memory(), Clock()
    original = memory.create_lease

    def lost_reply(tags: Mapping[str, str]) -> bool:
        original(tags)
        raise RegistryError("connection dropped", transient=True)

    memory.create_lease = lost_reply  # type: ignore[method-assign]
    held = lease.acquire(memory, "me", lease.LeasePolicy(ttl=60), clock=clock, sleep=clock.sleep)
    held.check()
    assert memory.tags is not None and memory.tags["owner"] == "me"


def test_a_lease_released_while_mlflow_words_its_refusal_is_free_not_an_error(tmp_path: object) -> None:
    """MLflow's SQL store, refused a name that exists, reads that model to word its answer; when the holder
    deletes the lease in that moment, the answer is "does not exist". The race is forced on MLflow's own store:
    that read runs only after the holder's delete. A waiter must take it as "held, now free" and take it."""
    from pathlib import Path

    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    from controller.registry import Registry

    uri = f"sqlite:///{Path(str(tmp_path)) / 'mlflow.db'}"
    SqlAlchemyStore(uri)  # a registry's tables
    registry = Registry(uri)
    assert registry.create_lease({"owner": "holder"})
    store = registry._client.store
    original = store.get_registered_model

    def holder_releases_first(name: str) -> object:
        store.get_registered_model = original
        registry.drop_lease()  # the holder's release lands between the refused insert and this read
        return original(name)

    store.get_registered_model = holder_releases_first
    taken = lease.acquire(registry, "waiter", lease.LeasePolicy(ttl=30, wait=5, poll=0.1), sleep=lambda s: None)
    assert store.get_registered_model is original  # the race did happen
    assert taken.owner == (registry.lease_holder() or {}).get("owner") == "waiter"
