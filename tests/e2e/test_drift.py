"""stagectl drift against a real server and a real git history."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import stagectl
from tests.gitrepo import commit_file, git, make_repo

pytestmark = pytest.mark.e2e


def _file(x: str, y: str, z: str, y_production: int) -> str:
    return (f"apiVersion: stagectl/v1\nmodels:\n"
            f"  {x}:\n    production: 1   # reviewed\n    staging: [2]\n    aliases: {{champion: 1}}\n"
            f"  {y}:\n    production: {y_production}\n"
            f"  {z}:\n    production: 1\n")


def test_drift_tells_changes_outside_git_from_merged_changes_and_heals_or_proposes(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    x, y, z = (f"{unique}-{n}" for n in "xyz")
    for name in (x, y, z):
        seed.make_model(registry, name, ["None", "None"])
    repo = make_repo(tmp_path / "repo")
    applied = commit_file(repo, _file(x, y, z, 1), "Manage x, y, z")
    uri = ["--tracking-uri", mlflow_server.uri]
    assert stagectl("apply", *uri, cwd=repo).returncode == 0
    clean = stagectl("drift", *uri, "--detailed-exitcode", cwd=repo)
    assert clean.returncode == 0 and "Drift: 0 changed outside git, 0 of unknown origin, 0 pending, 3 in sync." \
        in clean.stdout

    with warnings.catch_warnings():  # a click in the MLflow UI
        warnings.simplefilter("ignore", FutureWarning)
        registry.transition_model_version_stage(x, "2", "Production", archive_existing_versions=True)
    registry.set_registered_model_alias(x, "champion", "2")
    commit_file(repo, _file(x, y, z, 2), "Promote y v2")  # merged, not yet applied

    report = stagectl("drift", *uri, "--detailed-exitcode", cwd=repo)
    assert report.returncode == 2, report.stdout + report.stderr
    assert f"{x}: CHANGED OUTSIDE GIT since stagectl applied {applied[:7]}; to restore stages.yaml:" in report.stdout
    assert f"{y}: merged change not yet applied (the registry matches {applied[:7]} → now): production: 1 → 2" \
        in report.stdout
    assert f"{z}: in sync" in report.stdout
    data = {m["model"]: m for m in json.loads(stagectl("drift", *uri, "--format", "json", cwd=repo).stdout)["models"]}
    assert [data[n]["status"] for n in (x, y, z)] == ["drifted", "pending", "in_sync"]
    assert data[x]["applied_commit"] == applied

    proposed = stagectl("drift", *uri, "--mode", "propose", "--branch", "accept-drift", cwd=repo)
    assert proposed.returncode == 0, proposed.stderr
    assert git(repo, "branch", "--show-current") == "accept-drift"
    changed = [line for line in git(repo, "diff", "-U0", "HEAD~1", "HEAD").splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert sorted(changed) == sorted(["-    production: 1   # reviewed", "-    staging: [2]",
                                      "+    production: 2   # reviewed", "+    staging: []",
                                      "-    aliases: {champion: 1}", "+    aliases: {champion: 2}"])
    git(repo, "switch", "-q", "main")

    healed = stagectl("drift", *uri, "--mode", "heal", "--json-report", str(tmp_path / "drift.json"), cwd=repo)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert "Apply complete" in healed.stdout  # the apply's own report; the file keeps the drift that was healed
    found = json.loads((tmp_path / "drift.json").read_text())
    assert [m["status"] for m in found["models"]] == ["drifted", "pending", "in_sync"]
    after = stagectl("drift", *uri, "--detailed-exitcode", cwd=repo)
    assert after.returncode == 0 and "3 in sync" in after.stdout, after.stdout
    assert seed.snapshot(registry, [x])[x] == {"stages": {"1": "Production", "2": "Staging"},
                                                 "aliases": {"champion": "1"}}
