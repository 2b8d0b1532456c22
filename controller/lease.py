"""Mutual exclusion between applies, held in the registry itself.

MLflow has no compare-and-set, but creating a registered model whose name exists fails: the lease is a
model, created to take it and deleted to give it back. Its tags name the owner and an expiry, renewed
while the apply runs, so a killed run blocks others only until its lease expires.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from .errors import ControllerError, RegistryError


class LeaseBusyError(ControllerError):
    """Another apply held the lease for longer than we were willing to wait."""


class Leases(Protocol):
    def create_lease(self, tags: dict[str, str]) -> bool: ...
    def lease_holder(self) -> dict[str, str] | None: ...
    def renew_lease(self, key: str, value: str) -> None: ...
    def drop_lease(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    ttl: float = 300.0  # a holder that stops renewing (killed) loses the lease after this long
    wait: float = 300.0  # how long to wait for another apply to finish
    poll: float = 1.0


def new_owner(detail: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}" + (f" ({detail})" if detail else "")


@contextmanager
def held(registry: Leases, owner: str, policy: LeasePolicy = LeasePolicy(),
         clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
         on_wait: Callable[[str], None] = lambda holder: None) -> Iterator[None]:
    """Hold the lease for the duration of the block, renewing it in the background."""
    _acquire(registry, owner, policy, clock, sleep, on_wait)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(policy.ttl / 3):
            with contextlib.suppress(Exception):  # a missed renewal only shortens the lease; apply goes on
                registry.renew_lease("expires_at", f"{clock() + policy.ttl:.0f}")

    renewer = threading.Thread(target=renew, name="stagectl-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        holder = registry.lease_holder()
        if holder is not None and holder.get("owner") == owner:
            registry.drop_lease()


def _acquire(registry: Leases, owner: str, policy: LeasePolicy, clock: Callable[[], float],
             sleep: Callable[[float], None], on_wait: Callable[[str], None]) -> None:
    deadline = clock() + policy.wait
    announced = False
    while True:
        now = clock()
        tags = {"owner": owner, "acquired_at": f"{now:.0f}", "expires_at": f"{now + policy.ttl:.0f}"}
        try:
            if registry.create_lease(tags):
                return
        except RegistryError as e:
            if not e.transient or clock() >= deadline:
                raise
        # "Exists", or a failure whose outcome is unknown: our own create may have landed.
        holder = registry.lease_holder()
        if holder is not None and holder.get("owner") == owner:
            return
        if holder is None:
            sleep(policy.poll / 10)
            continue  # released between our create and our read: try again
        if float(holder.get("expires_at", "0")) < now:
            # The holder stopped renewing (killed). Take over only if it is still that same holder.
            again = registry.lease_holder()
            if again is not None and again.get("owner") == holder.get("owner"):
                registry.drop_lease()
            continue
        if now >= deadline:
            raise LeaseBusyError(f"another apply holds the registry lease ({holder.get('owner', 'unknown owner')}, "
                                 f"until {time.strftime('%H:%M:%S', time.gmtime(float(holder['expires_at'])))} UTC "
                                 f"unless renewed); waited {policy.wait:.0f} s")
        if not announced:
            on_wait(holder.get("owner", "unknown owner"))
            announced = True
        sleep(policy.poll * (1 + random.uniform(0, 0.5)))
