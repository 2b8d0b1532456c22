"""Metric and soak gates against a real server: runs logged with metrics, versions registered from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import skewed, stagectl, write
from tests.faultproxy import FaultProxy, writes

pytestmark = pytest.mark.e2e

POLICY = ("    policy:\n      metrics:\n        val_auc: {threshold: 0.92, min_absolute_change: 0.005}\n"
          "      soak: 24h\n")


def _versions(mlflow_server: Server, name: str, aucs: list[float]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    experiment = client.create_experiment(f"{name}-training")
    client.create_registered_model(name)
    for auc in aucs:
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "val_auc", auc)
        client.set_terminated(run.info.run_id)
        client.create_model_version(name, source=seed.SOURCE, run_id=run.info.run_id)


def _file(name: str, production: int, staging: int | None = None) -> str:
    staged = f"    staging: {staging}\n" if staging else ""
    return f"apiVersion: stagectl/v1\nmodels:\n  {name}:\n    production: {production}\n{staged}{POLICY}"


def test_a_promotion_that_breaks_a_metric_or_soak_gate_is_refused_with_its_numbers(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    name = f"{unique}-gated"
    _versions(mlflow_server, name, [0.93, 0.95, 0.90, 0.94])
    file = write(tmp_path / "stages.yaml", _file(name, 1))
    uri = ["--tracking-uri", mlflow_server.uri]
    first = stagectl("plan", "-f", str(file), *uri, "--format", "json", cwd=tmp_path)
    assert first.returncode == 1, first.stderr  # v1 was never in staging: the soak gate holds it back
    assert stagectl("apply", "-f", str(file), *uri, "--allow-dirty", cwd=tmp_path).returncode == 1
    assert registry.get_model_version(name, "1").current_stage == "None"
    checks = {c["gate"]: c for c in json.loads(first.stdout)["checks"]}
    assert checks["metrics"]["ok"] and "change not checked: no version in production now" in checks["metrics"]["detail"]
    assert not checks["soak"]["ok"] and "never put in staging by stagectl" in checks["soak"]["detail"]

    # Without the soak gate: v1 to production, v2 to staging two days ago (the applying runner's clock says so)...
    write(file, _file(name, 1, 2).replace("      soak: 24h\n", ""))
    staged = stagectl("apply", "-f", str(file), *uri, "--allow-dirty", cwd=tmp_path, env=skewed("-2d"))
    assert staged.returncode == 0, staged.stdout + staged.stderr
    registry.set_model_version_tag(name, "2", "reviewed-by", "someone")  # ...and tagged today: its last update moves
    write(file, _file(name, 1, 2))
    with FaultProxy(mlflow_server.uri) as proxy:  # in sync: nothing promotes, so no run is read
        assert stagectl("plan", "-f", str(file), "--tracking-uri", proxy.uri, "--detailed-exitcode",
                        cwd=tmp_path).returncode == 0
    assert not [p for _, p in proxy.seen if p.endswith("runs/get")]

    write(file, _file(name, 2) + "    archived: [1]\n")
    with FaultProxy(mlflow_server.uri) as proxy:
        ok = stagectl("plan", "-f", str(file), "--tracking-uri", proxy.uri, "--format", "json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    gates = {c["gate"]: c for c in json.loads(ok.stdout)["checks"]}
    assert gates["metrics"] == {"gate": "metrics", "model": name, "version": "2", "ok": True, "detail":
                                "val_auc 0.95; >= 0.92 ok; production v1 0.93, change +0.02; needs +0.005 ok"}
    assert gates["soak"]["ok"] and "(recorded by stagectl): 2d" in gates["soak"]["detail"]
    assert len([p for _, p in proxy.seen if p.endswith("runs/get")]) == 2  # the candidate's run and production's

    write(file, _file(name, 3, 2) + "    archived: [1]\n")
    with FaultProxy(mlflow_server.uri) as proxy:
        refused = stagectl("apply", "-f", str(file), "--tracking-uri", proxy.uri, "--allow-dirty", cwd=tmp_path)
    assert refused.returncode == 1 and writes(proxy) == []
    said = refused.stdout + refused.stderr
    assert (f"VIOLATED  metrics: {name} version 3: val_auc 0.9; >= 0.92 FAILED; production v1 0.93, change -0.03; "
            "needs +0.005 FAILED") in said
    assert f"VIOLATED  soak: {name} version 3: never put in staging by stagectl" in said
