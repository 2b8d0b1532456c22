"""The lease where it breaks in life: a paused apply, clocks that disagree, a release that fails, two files.

Every run is the real `stagectl apply` against a real server. A paused process is SIGSTOPped at the moment
it holds the lease and has read the registry, before its first write; skewed clocks come from Debian's
libfaketime (wall clock moved, monotonic clock left true), which `make test` installs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller import lease
from controller.registry import Registry
from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import STAGECTL, Reader, skewed, stagectl
from tests.faultproxy import WRITES, FaultProxy, writes
from tests.gitrepo import commit_file, make_repo

pytestmark = pytest.mark.e2e

LEASE_CREATE = ("POST", "/api/2.0/mlflow/registered-models/create")
LEASE_DELETE = ("DELETE", "/api/2.0/mlflow/registered-models/delete")
TRANSITION = ("POST", "/api/2.0/mlflow/model-versions/transition-stage")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STAGECTL_"))}
    return {**base, "NO_COLOR": "1", **(extra or {})}


def _models(registry: seed.ModelRegistryClient, prefix: str, count: int = 3) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(count)]
    for name in names:
        seed.make_model(registry, name, ["Production", "Staging", "Staging", "Staging"], aliases={"champion": 1})
    return names


def _repo(path: Path, names: list[str], production: str) -> Path:
    """A checkout whose stages file declares `production` for every model; both sides share one owner."""
    body = "".join(f"  {n}:\n    production: {production}\n" for n in names)
    make_repo(path)
    commit_file(path, f"apiVersion: stagectl/v1\nowner: ml-platform\nmodels:\n{body}", f"Production {production}")
    return path


def _production(registry: seed.ModelRegistryClient, names: list[str]) -> dict[str, str]:
    """Each model's versions in Production, as "2" or "2,3"."""
    stages = seed.snapshot(registry, names)
    return {n: ",".join(sorted(v for v, s in stages[n]["stages"].items() if s == "Production"))  # type: ignore[index]
            for n in names}


class Trap:
    """A proxy hook that runs `spring` once, right after the registry answered the first request that
    `armed_by` arms and `fires_on` then matches, before stagectl sees the answer."""

    def __init__(self, armed_by: tuple[str, str], fires_on: tuple[str, str] | None,
                 spring: Callable[[], None]) -> None:
        self.armed_by, self.fires_on, self.spring = armed_by, fires_on, spring
        self.armed = False
        self.fired = threading.Event()
        self.at = 0.0

    def __call__(self, n: int, method: str, path: str, status: int) -> None:
        request = (method, path.split("?", 1)[0])
        if self.fired.is_set():
            return
        if not self.armed and request == self.armed_by and status == 200:
            self.armed = True
            if self.fires_on is not None:
                return
        if self.armed and (self.fires_on is None or request == self.fires_on):
            self.spring()
            self.at = time.monotonic()
            self.fired.set()


@pytest.mark.parametrize("declared", ["2", "[2, 3]"], ids=["one-in-production", "two-in-production"])
def test_an_apply_paused_past_its_lease_never_undoes_the_apply_that_took_over(
        declared: str, tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str,
        rounds: int) -> None:
    for round_ in range(max(2, rounds // 3)):
        names = _models(registry, f"{unique}-r{round_}")
        older = _repo(tmp_path / f"a{round_}", names, declared)
        newer = _repo(tmp_path / f"b{round_}", names, "4")
        paused: list[subprocess.Popen[str]] = []
        # Paused holding the lease, with the registry read and its plan about to be made: before any write.
        trap = Trap(LEASE_CREATE, ("GET", "/api/2.0/mlflow/model-versions/search"),
                    lambda stopped=paused: os.kill(stopped[0].pid, signal.SIGSTOP))
        with FaultProxy(mlflow_server.uri, after=trap) as proxy, Reader(mlflow_server.uri, names) as reader:
            paused.append(subprocess.Popen(
                [STAGECTL, "apply", "--tracking-uri", proxy.uri, "--lease-ttl", "2", "--format", "json"],
                cwd=older, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            assert trap.fired.wait(60), "the first apply never took the lease"
            result = stagectl("apply", "--tracking-uri", mlflow_server.uri, "--lease-wait", "60", cwd=newer)
            assert result.returncode == 0, result.stderr
            assert "Waiting for the registry lease" in result.stderr  # it met the paused holder's lease
            with Reader(mlflow_server.uri, names) as after:
                os.kill(paused[0].pid, signal.SIGCONT)
                out, err = paused[0].communicate(timeout=120)
                assert paused[0].returncode == 1, err
        report = json.loads(out)
        assert report["steps"] and all(s["status"] == "skipped" and s["error"].startswith("lease lost")
                                       for s in report["steps"]), report
        assert [(m, p) for t, m, p in proxy.stamps if t > trap.at and m in WRITES] == [], \
            "the paused apply wrote after it resumed"
        assert _production(registry, names) == dict.fromkeys(names, "4")
        assert reader.most == 1 and after.most == 1, (reader.most, after.most)


def _hold(uri: str, ttl: float, until: threading.Event) -> threading.Thread:
    """A live apply on true time: holds and renews the lease until told to stop."""
    ready = threading.Event()

    def run() -> None:
        with lease.held(Registry(uri), "live-holder", lease.LeasePolicy(ttl=ttl)):
            ready.set()
            until.wait(120)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    return thread


def test_a_runner_with_a_fast_clock_cannot_take_a_live_lease(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    names = _models(registry, unique)
    fast = _repo(tmp_path / "fast", names, "2")
    before = seed.snapshot(registry, names)
    done = threading.Event()
    holder = _hold(mlflow_server.uri, 10, done)
    try:
        with FaultProxy(mlflow_server.uri) as proxy:
            result = subprocess.run([STAGECTL, "apply", "--tracking-uri", proxy.uri, "--lease-wait", "14"], cwd=fast,
                                    env=_env(skewed("+10m")), capture_output=True, text=True, timeout=120)
    finally:
        done.set()
        holder.join()
    assert result.returncode == 1 and "another apply holds the registry lease (live-holder" in result.stderr, \
        result.stderr
    assert set(writes(proxy)) == {LEASE_CREATE}  # it only ever tried to create the lease, and was refused
    assert seed.snapshot(registry, names) == before


def test_a_holder_with_a_slow_clock_keeps_its_lease(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    names = _models(registry, unique, count=4)
    slow_file = _repo(tmp_path / "slow", names, "2")
    true_file = _repo(tmp_path / "true", names, "3")

    def slow_writes(n: int, method: str, path: str, status: int) -> None:
        if path.startswith(TRANSITION[1]):
            time.sleep(2.5)  # a long apply: it runs for longer than its TTL, renewing all along

    with FaultProxy(mlflow_server.uri, after=slow_writes) as slow_proxy, \
            FaultProxy(mlflow_server.uri) as true_proxy, Reader(mlflow_server.uri, names) as reader:
        holder = subprocess.Popen([STAGECTL, "apply", "--tracking-uri", slow_proxy.uri, "--lease-ttl", "6",
                                   "--parallelism", "1"], cwd=slow_file, env=_env(skewed("-10m")),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while TRANSITION not in slow_proxy.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        waiter = stagectl("apply", "--tracking-uri", true_proxy.uri, "--lease-wait", "60",
                          cwd=true_file)
        _, err = holder.communicate(timeout=120)
    assert holder.returncode == 0, err
    assert waiter.returncode == 0 and "Waiting for the registry lease" in waiter.stderr, waiter.stderr
    held_until = max(t for t, m, p in slow_proxy.stamps if (m, p) == TRANSITION)
    assert held_until - min(t for t, m, p in slow_proxy.stamps if (m, p) == TRANSITION) > 6  # longer than its TTL
    first_write = min(t for t, m, p in true_proxy.stamps if (m, p) == TRANSITION)
    assert first_write > held_until, "the apply on true time wrote while the slow-clock holder still held the lease"
    assert _production(registry, names) == dict.fromkeys(names, "3")
    assert reader.most == 1


def test_a_killed_holder_with_a_fast_clock_keeps_others_out_for_one_ttl_not_for_its_skew(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    names = _models(registry, unique)
    fast = _repo(tmp_path / "fast", names, "2")
    true_file = _repo(tmp_path / "true", names, "3")
    killed: list[subprocess.Popen[str]] = []
    trap = Trap(LEASE_CREATE, None, lambda: os.kill(killed[0].pid, signal.SIGKILL))
    with FaultProxy(mlflow_server.uri, after=trap) as proxy:
        killed.append(subprocess.Popen([STAGECTL, "apply", "--tracking-uri", proxy.uri, "--lease-ttl", "5"],
                                       cwd=fast, env=_env(skewed("+1h")), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True))
        assert trap.fired.wait(60)
        killed[0].communicate(timeout=30)
    started = time.monotonic()
    result = stagectl("apply", "--tracking-uri", mlflow_server.uri, "--lease-wait", "120", cwd=true_file)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert 5 <= elapsed < 5 + 20, f"kept out for {elapsed:.1f} s by a lease with a 5 s TTL"
    assert _production(registry, names) == dict.fromkeys(names, "3")


def test_a_release_that_fails_keeps_the_report_and_exit_0_and_blocks_the_next_apply_one_ttl_at_most(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    names = _models(registry, unique)
    first = _repo(tmp_path / "first", names, "2")
    second = _repo(tmp_path / "second", names, "3")
    fail_release = lambda n, m, p: "500" if (m, p.split("?", 1)[0]) == LEASE_DELETE else None  # noqa: E731
    with FaultProxy(mlflow_server.uri, faults=fail_release) as proxy:
        result = stagectl("apply", "--tracking-uri", proxy.uri, "--lease-ttl", "8", "--format", "json", cwd=first)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and len(report["steps"]) == len(names) * 2
    assert all(s["status"] == "applied" for s in report["steps"])
    assert "Warning: the registry lease could not be released" in result.stderr
    assert proxy.seen.count(LEASE_DELETE) >= 2  # retried like any write
    started = time.monotonic()
    nothing_to_do = stagectl("apply", "--tracking-uri", mlflow_server.uri, cwd=first)
    assert nothing_to_do.returncode == 0 and "the registry lease is held" in nothing_to_do.stderr
    result = stagectl("apply", "--tracking-uri", mlflow_server.uri, "--lease-wait", "60", cwd=second)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 8 + 20
    assert _production(registry, names) == dict.fromkeys(names, "3")
    assert "stagectl-lease" not in [m.name for m in registry.search_registered_models(
        filter_string="name = 'stagectl-lease'")]


def test_a_model_another_stages_file_manages_is_refused_until_adopted(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-shared"
    seed.make_model(registry, model, ["Production", "Staging", "Staging"])
    body = "apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: {v}\n"
    team_a, team_b = make_repo(tmp_path / "team-a"), make_repo(tmp_path / "team-b")
    commit_file(team_a, body.format(model=model, v=2), "Promote v2")
    commit_file(team_b, body.format(model=model, v=3), "Promote v3")
    uri = ["--tracking-uri", mlflow_server.uri]
    assert stagectl("apply", *uri, cwd=team_a).returncode == 0
    tags = registry.get_registered_model(model).tags
    assert tags["stagectl.owner"] == f"{team_a.resolve().as_posix()}:stages.yaml"
    assert "reverted" in tags["stagectl.managed"] and team_a.resolve().as_posix() in tags["stagectl.managed"]

    with FaultProxy(mlflow_server.uri) as proxy:
        plan = stagectl("plan", "--tracking-uri", proxy.uri, cwd=team_b)
        refused = stagectl("apply", "--tracking-uri", proxy.uri, cwd=team_b)
    assert plan.returncode == 1 and refused.returncode == 1
    for output in (plan.stdout, refused.stderr):
        assert f"managed by another stages file: {team_a.resolve().as_posix()}:stages.yaml" in output
        assert f"--adopt {model}" in output
    assert writes(proxy) == []  # refused before the lease: nothing at all was written
    assert _production(registry, [model]) == {model: "2"}
    blamed = stagectl("drift", *uri, "--detailed-exitcode", cwd=team_b)
    assert blamed.returncode == 2 and "CHANGED OUTSIDE GIT" not in blamed.stdout and "unknown origin:" not in \
        blamed.stdout
    assert f"{model}: managed by another file: {team_a.resolve().as_posix()}:stages.yaml" in blamed.stdout

    adopted_plan = stagectl("plan", *uri, "--adopt", model, cwd=team_b)
    assert adopted_plan.returncode == 0 and f"taken over from {team_a.resolve().as_posix()}" in adopted_plan.stdout
    adopted = stagectl("apply", *uri, "--adopt", model, cwd=team_b)
    assert adopted.returncode == 0, adopted.stderr
    assert _production(registry, [model]) == {model: "3"}
    assert registry.get_registered_model(model).tags["stagectl.owner"] == f"{team_b.resolve().as_posix()}:stages.yaml"
    back = stagectl("apply", *uri, cwd=team_a)
    assert back.returncode == 1 and f"managed by another stages file: {team_b.resolve().as_posix()}" in back.stderr
    assert _production(registry, [model]) == {model: "3"}
    assert "in sync" in stagectl("drift", *uri, cwd=team_b).stdout
    assert f"managed by another file: {team_b.resolve().as_posix()}" in stagectl("drift", *uri, cwd=team_a).stdout
