"""Saved plans: apply executes exactly the saved steps, and refuses them once the registry changed."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jsonschema
import pytest

from tests import seed
from tests.conftest import ROOT, Server
from tests.e2e.helpers import stagectl
from tests.faultproxy import FaultProxy, writes
from tests.gitrepo import commit_file, make_repo

pytestmark = pytest.mark.e2e


def _file(model: str) -> str:
    return f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n    aliases: {{champion: 2}}\n"


def test_a_saved_plan_applies_exactly_and_records_its_commit(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"], aliases={"champion": 1})
    repo = make_repo(tmp_path / "repo")
    sha = commit_file(repo, _file(model), "Promote v2")
    uri = ["--tracking-uri", mlflow_server.uri]
    planned = stagectl("plan", *uri, "--out", "plan.json", cwd=repo)
    assert planned.returncode == 0, planned.stderr
    saved = json.loads((repo / "plan.json").read_text())
    assert saved["kind"] == "stagectl-saved-plan" and saved["source"]["commit"] == sha
    assert saved["live"][model]["versions"] == {"1": "Production", "2": "Staging"}
    schema = json.loads((ROOT / "schemas/saved-plan.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    # The saved plan is "a plan (every property of plan.schema.json)" plus its own: validate the file that
    # plan --out wrote against the two schemas so combined, as apply reads them.
    plan_schema = json.loads((ROOT / "schemas/plan.schema.json").read_text())
    combined = {**schema, "$defs": {**plan_schema["$defs"], **schema.get("$defs", {})},
                "properties": {**plan_schema["properties"], **schema["properties"]}}
    jsonschema.Draft202012Validator(combined).validate(saved)

    (repo / "stages.yaml").write_text("apiVersion: stagectl/v1\nmodels: {}\n")  # the saved plan, not the file, rules
    applied = stagectl("apply", "plan.json", *uri, cwd=repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert seed.snapshot(registry, [model])[model] == {
        "stages": {"1": "Archived", "2": "Production"}, "aliases": {"champion": "2"}}
    assert registry.get_model_version(model, "2").tags["stagectl.commit"] == sha


def test_a_stale_saved_plan_is_refused_saying_what_changed_and_writes_nothing(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging", "None"], aliases={"champion": 1})
    (tmp_path / "stages.yaml").write_text(_file(model))
    with FaultProxy(mlflow_server.uri) as proxy:  # one proxy for both: the plan names the URI it was made for
        uri = ["--tracking-uri", proxy.uri]
        assert stagectl("plan", *uri, "--out", "plan.json", cwd=tmp_path).returncode == 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            registry.transition_model_version_stage(model, "3", "Production")  # someone, meanwhile
        before = seed.snapshot(registry, [model], times=True)
        refused = stagectl("apply", "plan.json", *uri, cwd=tmp_path)
    assert refused.returncode == 1
    assert "saved plan plan.json is stale: the registry changed since it was made; nothing was written" \
        in refused.stderr
    assert f"{model}: version 3 was None, is now Production" in refused.stderr
    assert writes(proxy) == []  # no lease taken and given back, no ownership tag
    assert seed.snapshot(registry, [model], times=True) == before

    other = stagectl("apply", "plan.json", "--tracking-uri", "sqlite:///nowhere.db", cwd=tmp_path)
    assert other.returncode == 1 and f"was made for {proxy.uri}, not sqlite:///nowhere.db" in other.stderr
    (tmp_path / "broken.json").write_text('{"kind": "stagectl-saved-plan"}')
    broken = stagectl("apply", "broken.json", "--tracking-uri", mlflow_server.uri, cwd=tmp_path)
    assert broken.returncode == 1 and "broken.json: not a saved stagectl plan" in broken.stderr


def test_a_plan_saved_for_one_registry_is_refused_by_another(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"], aliases={"champion": 1})
    (tmp_path / "stages.yaml").write_text(_file(model))
    assert stagectl("plan", "--tracking-uri", mlflow_server.uri, "--out", "plan.json", cwd=tmp_path).returncode == 0
    data = json.loads((tmp_path / "plan.json").read_text())
    data["tracking_uri"] = "https://mlflow.example.com"
    (tmp_path / "plan.json").write_text(json.dumps(data))
    result = stagectl("apply", "plan.json", "--tracking-uri", mlflow_server.uri, cwd=tmp_path)
    assert result.returncode == 1
    assert f"plan.json was made for https://mlflow.example.com, not {mlflow_server.uri}" in result.stderr
