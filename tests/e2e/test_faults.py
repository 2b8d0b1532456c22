"""Faults against real servers: a faulty network, the server killed after step k, stagectl itself killed.

After each, the next apply converges, no version is ever deleted, and a reader polling the whole time
never sees more versions in Production than declared.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import seed
from tests.conftest import Server, start_server, stop_server
from tests.e2e.helpers import STAGECTL, Reader, stagectl
from tests.faultproxy import FaultProxy
from tests.gitrepo import commit_file, make_repo

pytestmark = pytest.mark.e2e

MODELS = 3
FAST = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "2", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}


def _setup(registry: seed.ModelRegistryClient, prefix: str, tmp_path: Path) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(MODELS)]
    body = ""
    for name in names:
        seed.make_model(registry, name, ["Production", "Staging"], aliases={"champion": 1})
        body += f"  {name}:\n    production: 2\n    aliases: {{champion: 2}}\n"
    if not (tmp_path / ".git").exists():  # applied from a checkout, as CI does
        make_repo(tmp_path)
    commit_file(tmp_path, f"apiVersion: stagectl/v1\nmodels:\n{body}", f"Promote {prefix}")
    return names


def _converged(registry: seed.ModelRegistryClient, names: list[str]) -> bool:
    return all(seed.snapshot(registry, [n])[n] == {"stages": {"1": "Archived", "2": "Production"},
                                                    "aliases": {"champion": "2"}} for n in names)


def _no_lease_left(registry: seed.ModelRegistryClient) -> None:
    """Searched by name: a registry of more than a page of models must not hide a leaked lease."""
    assert registry.search_registered_models(filter_string="name = 'stagectl-lease'") == []


def _account(result: subprocess.CompletedProcess[str], registry: seed.ModelRegistryClient) -> None:
    """Exit 1 must come with an exact account: every step applied, failed or skipped, and 'applied' true."""
    data = json.loads(result.stdout)
    assert data["ok"] is (result.returncode == 0)
    assert {s["status"] for s in data["steps"]} <= {"applied", "failed", "skipped"}
    for step in data["steps"]:
        if step["status"] != "applied":
            continue
        live = seed.snapshot(registry, [step["model"]])[step["model"]]
        if step["action"] == "transition":
            assert live["stages"][step["version"]] in (step["to_stage"], "Archived")  # type: ignore[index]
        else:
            assert live["aliases"][step["alias"]] == step["version"]  # type: ignore[index]


def _random_fault(rng: random.Random) -> str | None:
    return rng.choice(["503", "drop_before", "drop_after", "stall"]) if rng.random() < 0.25 else None


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    return random.Random(request.node.name)


def test_faulty_network_ends_converged_or_with_an_exact_account(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str, rounds: int,
        rng: random.Random) -> None:
    for round_ in range(rounds):
        names = _setup(registry, f"{unique}-r{round_}", tmp_path)
        with FaultProxy(mlflow_server.uri, faults=lambda n, m, p: _random_fault(rng), stall=2.5) as proxy, \
                Reader(mlflow_server.uri, names) as reader:
            started = time.monotonic()
            result = stagectl("apply", "--tracking-uri", proxy.uri, "--format", "json", "--lease-ttl", "5",
                              cwd=tmp_path, env=FAST, timeout=300)
            elapsed = time.monotonic() - started
            assert elapsed < 180, f"apply took {elapsed:.0f} s under faults"
            assert result.returncode in (0, 1), result.stderr
            if result.stdout.strip().startswith("{"):
                _account(result, registry)
            else:
                assert result.returncode == 1 and "error:" in result.stderr  # failed before any step ran
            if result.returncode == 0:
                assert _converged(registry, names)
            again = stagectl("apply", "--tracking-uri", mlflow_server.uri, "--lease-wait", "30", cwd=tmp_path)
            assert again.returncode == 0, again.stdout + again.stderr
        assert _converged(registry, names)
        assert reader.most <= 1 and reader.versions_seen == 2
        assert proxy.injected, "the proxy injected no fault at all"


@pytest.fixture
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Server]]]:
    workdir = tmp_path_factory.mktemp("killable")
    servers = [start_server(workdir)]
    yield workdir, servers
    for server in servers:
        if server.process.poll() is None:
            stop_server(server)


def _kill(server: Server) -> None:
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()


def test_server_killed_after_step_k_then_restarted_next_apply_converges(
        tmp_path: Path, own_server: tuple[Path, list[Server]], request: pytest.FixtureRequest) -> None:
    workdir, servers = own_server
    total = MODELS * 2  # per model: the promotion (which archives the old version) and the alias move
    ks = range(1, total + 1) if request.config.getoption("--slow") else (1, total // 2, total)
    for k in ks:
        registry = seed.client(servers[-1].uri)
        names = _setup(registry, f"k{k}", tmp_path)
        writes = [0]

        def after(n: int, method: str, path: str, status: int, k: int = k, writes: list[int] = writes) -> None:
            if method == "POST" and ("transition-stage" in path or path.endswith("/alias")) and status == 200:
                writes[0] += 1
                if writes[0] == k:
                    _kill(servers[-1])

        # The reader watches the killed run too: the kill must not leave two versions in Production.
        with FaultProxy(servers[-1].uri, after=after) as proxy, Reader(servers[-1].uri, names) as during:
            first = stagectl("apply", "--tracking-uri", proxy.uri, "--lease-ttl", "3", "--parallelism", "1",
                             cwd=tmp_path, env=FAST, timeout=120)
        assert first.returncode == 1, first.stdout + first.stderr
        assert during.most <= 1 and during.versions_seen == 2
        servers.append(start_server(workdir, backend_uri=servers[0].backend))
        with Reader(servers[-1].uri, names) as reader:
            second = stagectl("apply", "--tracking-uri", servers[-1].uri, "--lease-wait", "30", cwd=tmp_path)
        assert second.returncode == 0, second.stdout + second.stderr
        registry = seed.client(servers[-1].uri)
        assert _converged(registry, names)
        assert reader.most <= 1 and reader.versions_seen == 2


def test_stagectl_killed_mid_apply_next_run_converges(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    names = _setup(registry, unique, tmp_path)
    slow = FaultProxy(mlflow_server.uri, faults=lambda n, m, p: None,
                      after=lambda n, m, p, s: time.sleep(0.3) if m == "POST" else None)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "NO_COLOR": "1"}
    with slow, Reader(mlflow_server.uri, names) as reader:
        # A lease long enough that the next apply surely meets it still held, short enough to expire soon.
        process = subprocess.Popen([STAGECTL, "apply", "--tracking-uri", slow.uri, "--lease-ttl", "10",
                                    "--parallelism", "1"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("[2/"):
                process.send_signal(signal.SIGKILL)
                break
        process.wait()
        assert process.returncode == -signal.SIGKILL
        assert not _converged(registry, names)
        again = stagectl("apply", "--tracking-uri", mlflow_server.uri, "--lease-wait", "30", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Waiting for the registry lease" in again.stderr  # the killed run's lease, until it expired
    assert _converged(registry, names)
    _no_lease_left(registry)  # the killed run's lease was taken over by the next, and released
    assert reader.most <= 1 and reader.versions_seen == 2


def test_a_write_whose_reply_was_lost_is_read_back_not_sent_again(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    """Deterministic: the server commits the first promotion, and its reply is dropped. stagectl must read the
    version back and find it promoted, not send the promotion again. MLflow's own retries are off, so any
    second attempt would be stagectl's."""
    names = _setup(registry, unique, tmp_path)
    dropped: list[int] = []

    def drop_first_promotion(n: int, method: str, path: str) -> str | None:
        if method == "POST" and "transition-stage" in path and not dropped:
            dropped.append(n)
            return "drop_after"
        return None

    with FaultProxy(mlflow_server.uri, faults=drop_first_promotion) as proxy:
        result = stagectl("apply", "--tracking-uri", proxy.uri, "--parallelism", "1", cwd=tmp_path,
                          env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert [fault for *_, fault in proxy.injected] == ["drop_after"]
    promotions = [n for n, (m, p) in enumerate(proxy.seen) if p.endswith("/transition-stage")]
    assert len(promotions) == MODELS  # one per model: the one whose reply was lost was not sent twice
    after = proxy.seen[dropped[0] + 1]
    assert after == ("GET", "/api/2.0/mlflow/model-versions/get"), proxy.seen  # read back first
    assert _converged(registry, names)
