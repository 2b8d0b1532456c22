"""The lease protocol on an in-memory registry with a fake clock (the real race: tests/e2e)."""

from __future__ import annotations

import pytest

from controller import lease


class Memory:
    def __init__(self) -> None:
        self.tags: dict[str, str] | None = None
        self.deleted = 0

    def create_lease(self, tags: dict[str, str]) -> bool:
        if self.tags is not None:
            return False
        self.tags = dict(tags)
        return True

    def lease_holder(self) -> dict[str, str] | None:
        return None if self.tags is None else dict(self.tags)

    def renew_lease(self, key: str, value: str) -> None:
        assert self.tags is not None
        self.tags[key] = value

    def drop_lease(self) -> None:
        self.tags = None
        self.deleted += 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_lease_is_held_for_the_block_and_released_after() -> None:
    memory, clock = Memory(), Clock()
    with lease.held(memory, "me", clock=clock, sleep=clock.sleep):
        assert memory.tags is not None and memory.tags["owner"] == "me"
        assert memory.tags["expires_at"] == "1300"
    assert memory.tags is None


def test_a_live_holder_makes_us_wait_then_give_up_with_its_name() -> None:
    memory, clock = Memory(), Clock()
    memory.create_lease({"owner": "ci-run-7", "expires_at": "99999"})
    waited: list[str] = []
    with pytest.raises(lease.LeaseBusyError, match=r"another apply holds the registry lease \(ci-run-7"), \
            lease.held(memory, "me", lease.LeasePolicy(wait=10), clock=clock, sleep=clock.sleep,
                       on_wait=waited.append):
        pass
    assert waited == ["ci-run-7"] and memory.tags is not None and memory.tags["owner"] == "ci-run-7"


def test_an_expired_lease_of_a_killed_run_is_taken_over() -> None:
    memory, clock = Memory(), Clock()
    memory.create_lease({"owner": "killed", "expires_at": "900"})
    with lease.held(memory, "me", clock=clock, sleep=clock.sleep):
        assert memory.tags is not None and memory.tags["owner"] == "me"
    assert memory.deleted == 2  # the expired lease, then ours


def test_a_lease_taken_over_meanwhile_is_not_deleted_by_us() -> None:
    memory, clock = Memory(), Clock()
    with lease.held(memory, "me", clock=clock, sleep=clock.sleep):
        memory.tags = {"owner": "someone-else", "expires_at": "99999"}
    assert memory.tags == {"owner": "someone-else", "expires_at": "99999"}
