"""Two applies at once must exclude each other: never two versions in production where one is declared."""

from __future__ import annotations

import os
import subprocess
import threading
import warnings
from pathlib import Path

import pytest

from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import STAGECTL, Reader, write
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.e2e


def _reset(registry: seed.ModelRegistryClient, model: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        registry.transition_model_version_stage(model, "1", "Production", archive_existing_versions=True)


@pytest.mark.parametrize("same_file", [False, True], ids=["different-files", "same-file"])
def test_concurrent_applies_never_leave_two_versions_in_production(
        same_file: bool, tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str,
        rounds: int) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging", "Staging"])
    # Two runs of one repository at two commits: one owner.
    files = [write(tmp_path / f"{name}.yaml",
                   f"apiVersion: stagectl/v1\nowner: team\nmodels:\n  {model}:\n    production: {v}\n")
             for name, v in (("a", 2), ("b", 2 if same_file else 3))]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
           "MLFLOW_TRACKING_URI": mlflow_server.uri}
    for _ in range(rounds):
        _reset(registry, model)
        with Reader(mlflow_server.uri, [model]) as watcher:
            runs = [subprocess.Popen([STAGECTL, "apply", "--allow-dirty", "-f", str(f)], cwd=tmp_path, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in files]
            results = [(r.wait(timeout=120), *r.communicate()) for r in runs]
        assert [code for code, _, _ in results] == [0, 0], results
        stages = seed.snapshot(registry, [model])[model]["stages"]  # type: ignore[index]
        in_production = sorted(v for v, s in stages.items() if s == "Production")
        assert len(in_production) == 1 and in_production[0] in ("2", "3"), stages
        assert watcher.most == 1, f"a reader saw {watcher.most} versions in Production at once"
        assert not registry.search_registered_models(filter_string="name = 'stagectl-lease'")  # released


def test_an_apply_that_waited_for_the_lease_plans_again_under_it(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    """Forced overlap: the first apply is held in the proxy, before its first write, until the second has
    planned and is waiting for the lease. The second's first plan (archive version 2, still in Staging then)
    would empty Production once the first has promoted 2: only its plan under the lease is safe."""
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"])
    first = write(tmp_path / "first.yaml",
                  f"apiVersion: stagectl/v1\nowner: team\nmodels:\n  {model}:\n    production: 2\n")
    second = write(tmp_path / "second.yaml",
                   f"apiVersion: stagectl/v1\nowner: team\nmodels:\n  {model}:\n    production: 1\n    staging: []\n")
    first_holds, second_waits = threading.Event(), threading.Event()

    def took_lease(n: int, method: str, path: str, status: int) -> None:
        if path.startswith("/api/2.0/mlflow/registered-models/create") and status == 200:
            first_holds.set()

    def hold_first_write(n: int, method: str, path: str) -> None:
        if path.startswith("/api/2.0/mlflow/model-versions/transition-stage"):
            assert second_waits.wait(60), "the second apply never waited for the lease"
        return None

    def refused_lease(n: int, method: str, path: str, status: int) -> None:
        if path.startswith("/api/2.0/mlflow/registered-models/create") and status != 200:
            second_waits.set()

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "NO_COLOR": "1"}
    def start(file: Path, proxy: FaultProxy) -> subprocess.Popen[str]:
        return subprocess.Popen([STAGECTL, "apply", "-f", str(file), "--tracking-uri", proxy.uri, "--allow-dirty"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    with FaultProxy(mlflow_server.uri, faults=hold_first_write, after=took_lease) as first_proxy, \
            FaultProxy(mlflow_server.uri, after=refused_lease) as second_proxy, \
            Reader(mlflow_server.uri, [model]) as watcher:
        runs = [start(first, first_proxy)]
        assert first_holds.wait(60), "the first apply never took the lease"
        runs.append(start(second, second_proxy))  # it plans before it meets the lease: that plan goes stale
        results = [(r.wait(timeout=120), *r.communicate()) for r in runs]
    assert [code for code, _, _ in results] == [0, 0], results
    assert "Waiting for the registry lease" in results[1][2]
    stages = seed.snapshot(registry, [model])[model]["stages"]  # type: ignore[index]
    assert stages == {"1": "Production", "2": "Archived"}, stages
    assert watcher.least == 1 and watcher.most == 1, (watcher.least, watcher.most)
