"""Mutual exclusion between applies, held in the registry itself and judged on each process's own clock.

MLflow has no compare-and-set, but creating a registered model whose name exists fails: the lease is a
model, created to take it and deleted to give it back. Clocks of different machines are never compared:
- the holder counts its lease from the moment it sent its last successful renewal, on its own monotonic
  clock (one that counts time suspended), and treats it as lost a margin before the TTL runs out. Every
  write checks that first, locally, without a request; a lost lease is never renewed or released again;
- a waiter takes over only a lease record (holder, renewal count) that it has itself seen unchanged for a
  whole TTL on its own monotonic clock, as Kubernetes' leader election does.
Wall-clock times in the record are there for people reading it in the MLflow UI, never for deciding.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from .errors import ControllerError, RegistryError


class LeaseBusyError(ControllerError):
    """Another apply held the lease for longer than we were willing to wait."""


class LeaseLostError(ControllerError):
    """Our lease may have passed to another apply (we were paused, or could not renew in time): write nothing."""


class Leases(Protocol):
    def create_lease(self, tags: Mapping[str, str]) -> bool: ...
    def lease_holder(self) -> dict[str, str] | None: ...
    def renew_lease(self, tags: Mapping[str, str]) -> None: ...
    def drop_lease(self) -> None: ...


def _sleep(seconds: float) -> None:
    """Sleep on a condition variable rather than time.sleep, whose absolute-deadline clock_nanosleep fails
    (EINVAL) in a process whose wall clock an LD_PRELOAD tool such as libfaketime shifts."""
    threading.Event().wait(seconds)


def _boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


# A monotonic clock that keeps counting while the machine is suspended, where the platform has one.
monotonic: Callable[[], float] = _boottime if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    ttl: float = 300.0  # a holder that stops renewing (killed, paused) loses the lease after this long
    wait: float = 300.0  # how long to wait for another apply that is still renewing
    poll: float = 1.0

    @property
    def renew_every(self) -> float:
        return self.ttl / 6

    @property
    def margin(self) -> float:
        """The holder gives its lease up this long before a waiter could take it over."""
        return self.ttl / 3

    @property
    def settle(self) -> float:
        """After a takeover, how long to wait before trusting it: a rival that read the same stale record
        deletes within a request's time of that read."""
        return min(2.0, self.ttl / 10)


def new_owner(detail: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}" + (f" ({detail})" if detail else "")


def describe(holder: Mapping[str, str]) -> str:
    """A lease record as people read it."""
    return (f"{holder.get('owner', 'unknown owner')}, taken at {holder.get('acquired_at', '?')}, renewals: "
            f"{holder.get('renewals', '0')}")


class Lease:
    """A lease we hold: valid until a margin before its TTL, counted from the last renewal we sent."""

    def __init__(self, registry: Leases, owner: str, policy: LeasePolicy, clock: Callable[[], float],
                 sent: float) -> None:
        self.owner, self.policy = owner, policy
        self.renewals = 0
        self.release_error: str | None = None  # set when giving the lease back failed
        self._registry, self._clock = registry, clock
        self._valid_until = sent + policy.ttl - policy.margin
        self._lost: str | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise LeaseLostError unless the lease is surely still ours. Local: no request."""
        with self._lock:
            if self._lost is None and self._clock() >= self._valid_until:
                self._lost = (f"the registry lease was not renewed within {self.policy.ttl - self.policy.margin:.0f} "
                              f"s (the process was paused, or the registry did not answer): another apply may "
                              "hold it now")
            if self._lost is not None:
                raise LeaseLostError(f"lease lost: {self._lost}")

    @property
    def lost(self) -> bool:
        try:
            self.check()
        except LeaseLostError:
            return True
        return False

    def renew(self) -> None:
        """One renewal, one request: the new count is what waiters see change. Raises on failure; the caller
        retries."""
        sent = self._clock()
        self.check()
        count = self.renewals + 1
        # One request: a pause between two could put the second after the lease is lost.
        self._registry.renew_lease({"renewals": _renewals(count)})
        with self._lock:
            self.renewals = count
            if self._lost is None:
                self._valid_until = max(self._valid_until, sent + self.policy.ttl - self.policy.margin)

    def release(self, sleep: Callable[[float], None] = _sleep, attempts: int = 3) -> None:
        """Give the lease back, retried like any write; a lost lease is left for a waiter to take over."""
        for attempt in range(attempts):
            try:
                self.check()
                holder = self._registry.lease_holder()
                if holder is not None and holder.get("owner") == self.owner:
                    self._registry.drop_lease()
                return
            except LeaseLostError as e:
                self.release_error = str(e)
                return
            except RegistryError as e:
                if not e.transient or attempt == attempts - 1:
                    self.release_error = str(e)
                    return
            sleep(0.5 * 2**attempt)


@contextmanager
def held(registry: Leases, owner: str, policy: LeasePolicy = LeasePolicy(),
         clock: Callable[[], float] = monotonic, sleep: Callable[[float], None] = _sleep,
         on_wait: Callable[[str], None] = lambda holder: None) -> Iterator[Lease]:
    """Hold the lease for the duration of the block, renewing it in the background.

    The block must call `check()` before every write. Releasing never raises: a failure is left in
    `release_error` for the caller to report after its own report.
    """
    lease = acquire(registry, owner, policy, clock, sleep, on_wait)
    stop = threading.Event()

    def renew() -> None:
        wait = policy.renew_every
        while not stop.wait(wait):
            try:
                lease.renew()
                wait = policy.renew_every
            except LeaseLostError:
                return  # every later write fails its own check
            except Exception:  # retried soon, until the lease runs out: never ignored
                wait = min(1.0, policy.renew_every / 2)

    renewer = threading.Thread(target=renew, name="stagectl-lease", daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        stop.set()
        renewer.join()
        lease.release(sleep)


def acquire(registry: Leases, owner: str, policy: LeasePolicy, clock: Callable[[], float] = monotonic,
            sleep: Callable[[float], None] = _sleep,
            on_wait: Callable[[str], None] = lambda holder: None) -> Lease:
    started = clock()
    watched: tuple[str, str] | None = None  # the record being observed: (holder, renewal count)
    since = started  # when, on our clock, we first saw it as it is now
    changed = False  # whether we have seen the holder renew: then it is alive, and --lease-wait applies
    announced = False
    while True:
        sent = clock()
        try:
            if registry.create_lease(_record(owner, policy)):
                return Lease(registry, owner, policy, clock, sent)
        except RegistryError as e:
            if not e.transient or clock() - started >= policy.wait:
                raise
        holder = registry.lease_holder()  # "exists", or a failure whose outcome is unknown
        if holder is not None and holder.get("owner") == owner:
            return Lease(registry, owner, policy, clock, sent)  # our create landed; its reply was lost
        if holder is None:
            sleep(policy.poll / 10)
            continue  # released between our create and our read: try again
        now = clock()
        key = (holder.get("owner", ""), holder.get("renewals", ""))
        if key != watched:
            changed = changed or watched is not None
            watched, since = key, now
        ttl = _ttl(holder, policy)
        if now - since >= ttl:
            taken = _take_over(registry, owner, policy, clock, sleep, watched)
            if taken is not None:
                return taken
            watched = None
            continue
        if not announced:
            on_wait(describe(holder))
            announced = True
        limit = policy.wait if changed else max(policy.wait, ttl + 2 * policy.poll)
        if now - started >= limit:
            raise LeaseBusyError(f"another apply holds the registry lease ({describe(holder)}); waited "
                                 f"{now - started:.0f} s. Run again later, or raise --lease-wait")
        sleep(min(policy.poll * (1 + random.uniform(0, 0.5)), max(0.01, since + ttl - now)))


def _take_over(registry: Leases, owner: str, policy: LeasePolicy, clock: Callable[[], float],
               sleep: Callable[[float], None], stale: tuple[str, str] | None) -> Lease | None:
    """Remove a record seen unchanged for a whole TTL, and take the lease; None when someone else did."""
    again = registry.lease_holder()
    if again is None or (again.get("owner", ""), again.get("renewals", "")) != stale:
        return None
    registry.drop_lease()
    sent = clock()
    if not registry.create_lease(_record(owner, policy)):
        return None
    # A rival that read the same stale record just before our delete deletes ours a moment later: wait out
    # that moment, then make sure the record is still ours before any write relies on it.
    sleep(policy.settle)
    holder = registry.lease_holder()
    if holder is None or holder.get("owner") != owner:
        return None
    return Lease(registry, owner, policy, clock, sent)


def _record(owner: str, policy: LeasePolicy) -> dict[str, str]:
    return {"owner": owner, "renewals": _renewals(0), "ttl_seconds": f"{policy.ttl:g}",
            "acquired_at": f"{_wall()} by the holder's clock"}


def _renewals(count: int) -> str:
    """The value waiters watch change: the count, and for people the time by the holder's clock."""
    return f"{count}, last at {_wall()} by the holder's clock" if count else "0"


def _ttl(holder: Mapping[str, str], policy: LeasePolicy) -> float:
    """The holder's own TTL (it gives up a margin before it): waiters honour the promise the holder made."""
    try:
        return max(float(holder.get("ttl_seconds", "")), 1.0)
    except ValueError:
        return policy.ttl


def _wall() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
