"""Promotion gates through the real command: reported by plan, refused by apply before any write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import stagectl, write
from tests.faultproxy import FaultProxy, writes
from tests.gitrepo import commit_file, git, make_repo

pytestmark = pytest.mark.e2e

GATED = """\
apiVersion: stagectl/v1
defaults:
  policy:
    require_tags: {{validation_status: passed}}
    promote_from: staging
models:
  {model}:
{body}"""


def test_require_tags_and_promote_from_violations_block_apply_with_no_write(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging", "None"])
    registry.set_model_version_tag(model, "2", "validation_status", "failed")
    write(tmp_path / "stages.yaml", GATED.format(model=model, body="    production: [2, 3]\n"))
    uri = ["--tracking-uri", mlflow_server.uri]
    planned = stagectl("plan", *uri, "--format", "json", cwd=tmp_path)
    assert planned.returncode == 1
    checks = {(c["gate"], c["version"]): (c["ok"], c["detail"]) for c in json.loads(planned.stdout)["checks"]}
    assert checks == {
        ("require_tags", "2"): (False, "missing validation_status=passed (has 'failed')"),
        ("promote_from", "2"): (True, "in Staging now"),
        ("require_tags", "3"): (False, "missing validation_status=passed"),
        ("promote_from", "3"): (False, "in None, not in Staging now, nor declared in staging before"),
    }
    before = seed.snapshot(registry, [model], times=True)
    with FaultProxy(mlflow_server.uri) as proxy:
        applied = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path)
    assert applied.returncode == 1
    assert "the plan violates 3 gates; nothing was written" in applied.stderr
    assert f"VIOLATED  require_tags: {model} version 2: missing validation_status=passed (has 'failed')" \
        in applied.stderr
    assert writes(proxy) == []  # no lease, no ownership tag
    assert seed.snapshot(registry, [model], times=True) == before

    registry.set_model_version_tag(model, "2", "validation_status", "passed")
    write(tmp_path / "stages.yaml", GATED.format(model=model, body="    production: 2\n"))
    assert stagectl("apply", "--allow-dirty", *uri, cwd=tmp_path).returncode == 0
    assert seed.snapshot(registry, [model])[model]["stages"]["2"] == "Production"  # type: ignore[index]


def test_promote_from_accepts_a_version_declared_in_staging_on_the_base_branch(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "None"])  # v2 was declared in staging, never applied
    registry.set_model_version_tag(model, "2", "validation_status", "passed")
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, GATED.format(model=model, body="    production: 1\n    staging: [2]\n"), "Stage v2")
    git(repo, "switch", "-q", "-c", "promote")
    commit_file(repo, GATED.format(model=model, body="    production: 2\n    staging: []\n"), "Promote v2")
    uri = ["--tracking-uri", mlflow_server.uri]
    planned = stagectl("plan", "--base", "main", *uri, cwd=repo)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert f"ok  promote_from: {model} version 2: declared in staging at main" in planned.stdout
    applied = stagectl("apply", *uri, cwd=repo)  # no --base: found in the file's git history instead
    assert applied.returncode == 0, applied.stderr


def test_a_frozen_model_is_held_and_the_others_apply(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    frozen, free = f"{unique}-frozen", f"{unique}-free"
    seed.make_model(registry, frozen, ["Production", "Staging"])
    seed.make_model(registry, free, ["Production", "Staging"])
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n"
                                    f"  {frozen}:\n    production: 2\n    policy: {{frozen: 'INC-42: hold'}}\n"
                                    f"  {free}:\n    production: 2\n")
    uri = ["--tracking-uri", mlflow_server.uri]
    planned = stagectl("plan", *uri, "--format", "markdown", cwd=tmp_path)
    assert planned.returncode == 0
    assert f"- {frozen}: frozen (INC-42: hold): 2 steps held, apply skips them" in planned.stdout
    applied = stagectl("apply", "--allow-dirty", *uri, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    state = seed.snapshot(registry, [frozen, free])
    assert state[frozen]["stages"] == {"1": "Production", "2": "Staging"}  # type: ignore[index]
    assert state[free]["stages"] == {"1": "Archived", "2": "Production"}  # type: ignore[index]


def test_max_changes_refuses_a_large_plan_unless_raised_on_the_command_line(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    names = [f"{unique}-{i}" for i in range(3)]
    for name in names:
        seed.make_model(registry, name, ["Production", "Staging"])
    body = "".join(f"  {n}:\n    production: []\n" for n in names)  # a typo-sized mistake: archive everything
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\ndefaults:\n  policy: {{max_changes: 2}}\n"
                                    f"models:\n{body}")
    uri = ["--tracking-uri", mlflow_server.uri]
    before = seed.snapshot(registry, names, times=True)
    with FaultProxy(mlflow_server.uri) as proxy:
        refused = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path)
    assert refused.returncode == 1
    assert "max_changes: plan: 3 steps exceed max_changes 2 (raise it with --max-changes)" in refused.stderr
    assert writes(proxy) == []
    assert seed.snapshot(registry, names, times=True) == before
    allowed = stagectl("apply", "--allow-dirty", *uri, "--max-changes", "3", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
