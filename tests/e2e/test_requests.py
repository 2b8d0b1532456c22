"""How many requests stagectl sends: as few as the registry allows (counted, never timed)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import stagectl, write
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.e2e
MODELS = 6


def _wave(tmp_path: Path, registry: seed.ModelRegistryClient, prefix: str) -> None:
    body = ""
    for i in range(MODELS):
        seed.make_model(registry, f"{prefix}-{i}", ["Production", "Staging"], aliases={"champion": 1})
        body += f"  {prefix}-{i}:\n    production: 2\n    aliases: {{champion: 2}}\n"
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n{body}")


def test_plan_reads_no_more_than_the_floor(tmp_path: Path, mlflow_server: Server,
                                          registry: seed.ModelRegistryClient, unique: str) -> None:
    _wave(tmp_path, registry, unique)
    with FaultProxy(mlflow_server.uri) as proxy:
        assert stagectl("plan", "--tracking-uri", proxy.uri, cwd=tmp_path).returncode == 0
    assert Counter(path for _, path in proxy.seen) == {
        "/api/2.0/mlflow/registered-models/search": 1, "/api/2.0/mlflow/model-versions/search": 1}


def test_a_wave_sends_one_write_per_change_and_no_read_per_step(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    _wave(tmp_path, registry, unique)
    with FaultProxy(mlflow_server.uri) as proxy:
        result = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    calls = Counter(proxy.seen)
    assert calls[("POST", "/api/2.0/mlflow/model-versions/transition-stage")] == MODELS
    assert calls[("POST", "/api/2.0/mlflow/registered-models/alias")] == MODELS
    assert calls[("GET", "/api/2.0/mlflow/model-versions/get")] == 0  # no read-back per step
    assert calls[("GET", "/api/2.0/mlflow/registered-models/alias")] == 0
    # Models managed for the first time get their two ownership tags, once.
    assert calls[("POST", "/api/2.0/mlflow/registered-models/set-tag")] == 2 * MODELS
    # The provenance tags (here: applied outside git) are writes per version written, counted apart.
    tags = calls[("POST", "/api/2.0/mlflow/model-versions/set-tag")]
    assert tags == 4 * MODELS  # four tags on the version a model's promotion puts in service, none on the archived one
    # Three bulk reads (plan, plan under the lease, read-back) and the lease: fixed.
    assert proxy.count - 4 * MODELS - tags <= 10, calls

    write(tmp_path / "stages.yaml", (tmp_path / "stages.yaml").read_text().replace("production: 2", "production: 1"))
    with FaultProxy(mlflow_server.uri) as proxy:
        result = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    calls = Counter(proxy.seen)
    assert calls[("POST", "/api/2.0/mlflow/registered-models/set-tag")] == 0  # managed already: nothing to tag
    assert calls[("POST", "/api/2.0/mlflow/model-versions/transition-stage")] == MODELS
    tags = calls[("POST", "/api/2.0/mlflow/model-versions/set-tag")]
    assert tags == 4 * MODELS, calls  # version 1 goes back into service: archived, it was not tagged
    assert proxy.count - MODELS - tags <= 10, calls


def test_a_registry_of_mostly_other_models_is_read_by_name(tmp_path: Path, mlflow_server: Server, unique: str) -> None:
    """More than a page of other models: stagectl asks for its own by name instead of paging through them all."""
    seed.bulk(mlflow_server.backend, f"a{unique}", 1100, 1)  # sorts before every other test's models
    ours = f"{unique}-{'long-name-' * 10}"  # 40 names too long for one search filter
    seed.bulk(mlflow_server.backend, ours, 40, 2)  # v1 Production (champion), v2 Staging
    body = "".join(f"  {ours}-{i:05d}:\n    production: 2\n    aliases: {{champion: 2}}\n" for i in range(40))
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n{body}")
    with FaultProxy(mlflow_server.uri) as proxy:
        result = stagectl("plan", "--tracking-uri", proxy.uri, "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert {(s["model"], s["version"]) for s in steps if s.get("to_stage") == "Production"} == {
        (f"{ours}-{i:05d}", "2") for i in range(40)}
    assert sum(s.get("alias") == "champion" for s in steps) == 40
    searches = Counter(path for _, path in proxy.seen)
    # One page shows the registry is mostly other models; then two name filters for the models, two for versions.
    assert searches == {"/api/2.0/mlflow/registered-models/search": 3, "/api/2.0/mlflow/model-versions/search": 2}


def test_a_server_that_refuses_name_lists_gives_the_same_plan(tmp_path: Path, mlflow_server: Server,
                                                          registry: seed.ModelRegistryClient, unique: str) -> None:
    _wave(tmp_path, registry, unique)

    def refuse_filters(n: int, method: str, path: str) -> str | None:
        return "reject" if "/search?" in path and "filter=name+IN" in path else None

    with FaultProxy(mlflow_server.uri, faults=refuse_filters) as proxy:
        result = stagectl("plan", "--tracking-uri", proxy.uri, "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [fault for *_, fault in proxy.injected] == ["reject"]  # refused once, then asked name by name
    direct = stagectl("plan", "--tracking-uri", mlflow_server.uri, "--format", "json", cwd=tmp_path)
    assert json.loads(result.stdout)["steps"] == json.loads(direct.stdout)["steps"]
    assert len(json.loads(direct.stdout)["steps"]) >= 2 * MODELS
