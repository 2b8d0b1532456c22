"""`--model`: a plan or apply limited to some models of the file, said to be partial, provenance intact."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests import seed
from tests.conftest import ROOT, Server
from tests.e2e.helpers import stagectl
from tests.gitrepo import commit_file, make_repo

pytestmark = pytest.mark.e2e


def test_apply_limited_to_one_model_writes_only_it_and_says_the_run_is_partial(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    chosen, other = f"{unique}-fraud-detector", f"{unique}-churn"
    for name in (chosen, other):
        seed.make_model(registry, name, ["Production", "Staging"])
    repo = make_repo(tmp_path / "repo")
    sha = commit_file(repo, f"apiVersion: stagectl/v1\nmodels:\n  {chosen}:\n    production: 2\n"
                            f"  {other}:\n    production: 2\n", "Promote both")
    uri = ["--tracking-uri", mlflow_server.uri]
    before = seed.snapshot(registry, [other], times=True)

    planned = stagectl("plan", *uri, "--model", chosen, "--format", "json", cwd=repo)
    assert planned.returncode == 0, planned.stderr
    data = json.loads(planned.stdout)
    jsonschema.validate(data, json.loads((ROOT / "schemas/plan.schema.json").read_text()))
    assert data["partial"] is True and data["models"] == [chosen]
    assert {s["model"] for s in data["steps"]} == {chosen}

    applied = stagectl("apply", *uri, "--model", chosen, cwd=repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"Partial run: only {chosen} (--model)" in applied.stdout
    assert seed.snapshot(registry, [chosen])[chosen]["stages"] == {"1": "Archived", "2": "Production"}
    assert seed.snapshot(registry, [other], times=True) == before  # the other model was not touched
    assert registry.get_model_version(chosen, "2").tags.get("stagectl.commit") == sha
    assert "stagectl.commit" not in registry.get_model_version(other, "2").tags

    # Drift stays right: the chosen model is in sync, the other one is a merged change not applied yet.
    drift = {m["model"]: m["status"] for m in json.loads(
        stagectl("drift", *uri, "--format", "json", cwd=repo).stdout)["models"]}
    assert drift == {chosen: "in_sync", other: "unknown"}
    whole = stagectl("plan", *uri, "--format", "json", cwd=repo)
    assert {s["model"] for s in json.loads(whole.stdout)["steps"]} == {other}
    assert json.loads(whole.stdout)["partial"] is False


def test_model_names_the_file_does_not_declare_and_model_names_given_as_plans_are_explained(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-fraud-detector"
    seed.make_model(registry, model, ["Production", "Staging"])
    (tmp_path / "stages.yaml").write_text(f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n")
    before = seed.snapshot(registry, [model], times=True)
    uri = ["--tracking-uri", mlflow_server.uri]

    typo = stagectl("apply", *uri, "--model", f"{unique}-fraud-detectr", "--allow-dirty", cwd=tmp_path)
    assert typo.returncode == 1
    assert typo.stderr == (f"stages.yaml: --model '{unique}-fraud-detectr': the file declares no such model; "
                           f"did you mean '{model}'?\n")

    positional = stagectl("apply", model, *uri, cwd=tmp_path)
    assert positional.returncode == 1
    assert positional.stderr == (f"{model}: not a saved plan file, but stages.yaml declares a model of that name; "
                                 f"to apply only that model, run: stagectl apply --model {model}\n")
    assert seed.snapshot(registry, [model], times=True) == before
