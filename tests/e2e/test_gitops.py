"""The pull-request loop with real git repositories and a real mlflow server."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests import seed
from tests.conftest import ROOT, Server
from tests.e2e.helpers import stagectl
from tests.faultproxy import FaultProxy, writes
from tests.gitrepo import commit_file, git, make_repo

pytestmark = pytest.mark.e2e


def stages(model: str, body: str) -> str:
    return f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n{body}"


@pytest.fixture
def model(registry: seed.ModelRegistryClient, unique: str) -> str:
    name = f"{unique}-fraud"
    seed.make_model(registry, name, ["Production", "Staging", "None"], aliases={"champion": 1})
    return name


def test_plan_base_shows_the_change_under_review_and_the_registry_steps(
        tmp_path: Path, mlflow_server: Server, model: str) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, stages(model, "    production: 1\n    staging: [2]\n    aliases: {champion: 1}\n"), "Initial")
    git(repo, "switch", "-q", "-c", "promote-v2")
    commit_file(repo, stages(model, "    production: 2\n    archived: [1]\n    aliases: {champion: 2}\n"),
                "Promote v2")
    uri = ["--tracking-uri", mlflow_server.uri]

    result = stagectl("plan", "--base", "main", *uri, "--format", "markdown", cwd=repo)
    assert result.returncode == 0, result.stderr
    comment = result.stdout
    assert comment.startswith("<!-- stagectl:plan -->\n### stagectl plan: 3 changes to 1 model")
    assert f"| {model} | production: 1 → 2 |" in comment
    assert f"| {model} | alias champion: 1 → 2 |" in comment
    assert "| 2 | " + model + " | promote version 2: Staging → Production |" in comment
    assert "[!WARNING]" not in comment  # the registry matches main: no drift

    as_json = json.loads(stagectl("plan", "--base", "main", *uri, "--format", "json", cwd=repo).stdout)
    jsonschema.validate(as_json, json.loads((ROOT / "schemas/plan.schema.json").read_text()))
    assert as_json["base"]["ref"] == "main" and as_json["base"]["drift_steps"] == []
    assert as_json["format_version"] == 2
    assert {"model": model, "key": "production", "before": ["1"], "after": ["2"]} in as_json["base"]["changes"]
    assert {"model": model, "key": "staging", "before": ["2"], "after": None} in as_json["base"]["changes"]
    assert {"model": model, "key": "alias", "alias": "champion", "before": "1", "after": "2"} \
        in as_json["base"]["changes"]


def test_plan_base_reports_drift_when_the_registry_no_longer_matches_the_base(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, model: str) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, stages(model, "    production: 1\n    staging: [2]\n"), "Initial")
    git(repo, "switch", "-q", "-c", "stage-v3")
    commit_file(repo, stages(model, "    production: 1\n    staging: [3]\n"), "Stage v3")
    registry.transition_model_version_stage(model, "3", "Production")  # a click in the UI, outside git
    result = stagectl("plan", "--base", "main", "--tracking-uri", mlflow_server.uri, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "Drift: the registry does not match stages.yaml on main" in result.stdout
    assert f"{model}  staging: 2 → 3" in result.stdout


def test_apply_tags_each_written_version_with_its_commit(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, model: str) -> None:
    repo = make_repo(tmp_path / "repo")
    sha = commit_file(repo, stages(model, "    production: 2\n    aliases: {champion: 2}\n"), "Promote v2\n\nbody")
    env = {"GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "acme/models",
           "GITHUB_RUN_ID": "42"}
    result = stagectl("apply", "--tracking-uri", mlflow_server.uri, cwd=repo, env=env)
    assert result.returncode == 0, result.stderr
    # In Actions, the version's page in the MLflow UI also links to the commit.
    expected = {"stagectl.commit": sha, "stagectl.commit_url": f"https://github.example/acme/models/commit/{sha}",
                "stagectl.commit_author": "Ana Lyst <ana@example.com>",
                "stagectl.commit_subject": "Promote v2", "stagectl.applied_commit": sha,
                "stagectl.run_url": "https://github.example/acme/models/actions/runs/42"}
    assert registry.get_model_version(model, "2").tags == expected  # promoted and aliased: in service
    assert registry.get_model_version(model, "1").tags == {}  # archived by that promotion: keeps what it had
    assert registry.get_model_version(model, "3").tags == {}  # untouched


def test_apply_refuses_uncommitted_changes_and_writes_nothing(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, model: str) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, stages(model, "    production: 1\n"), "Initial")
    (repo / "stages.yaml").write_text(stages(model, "    production: 2\n"))
    before = seed.snapshot(registry, [model], times=True)
    with FaultProxy(mlflow_server.uri) as proxy:
        result = stagectl("apply", "--tracking-uri", proxy.uri, cwd=repo)
    assert result.returncode == 1
    assert "stages.yaml has uncommitted changes" in result.stderr and "--allow-dirty" in result.stderr
    assert writes(proxy) == []
    assert seed.snapshot(registry, [model], times=True) == before

    allowed = stagectl("apply", "--allow-dirty", "--tracking-uri", mlflow_server.uri, cwd=repo)
    assert allowed.returncode == 0, allowed.stderr
    tags = registry.get_model_version(model, "2").tags
    assert tags["stagectl.commit_subject"] == "Initial (applied with uncommitted changes to the stages file)"


def test_history_lists_the_commits_that_changed_a_model(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, stages("fraud", "    production: 1\n"), "Add fraud")
    commit_file(repo, stages("fraud", "    production: 1\n") + "  other:\n    production: 4\n", "Add other")
    second = commit_file(repo, stages("fraud", "    production: 2\n    archived: [1]\n    aliases: {champion: 2}\n")
                         + "  other:\n    production: 4\n", "Promote fraud v2", author="Bo Ops <bo@example.com>")
    result = stagectl("history", "fraud", cwd=repo)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "History of fraud in stages.yaml, newest first:"
    assert lines[2].split() == ["DATE", "COMMIT", "AUTHOR", "SUBJECT", "CHANGE"]
    assert second[:7] in lines[3] and "Bo Ops" in lines[3] and "Promote fraud v2" in lines[3]
    assert lines[3].endswith("production: 1 → 2; archived: — → 1; alias champion: — → 2")
    assert "Add fraud" in lines[4] and lines[4].endswith("now managed; production: — → 1")
    assert len(lines) == 5  # "Add other" did not touch fraud
    data = json.loads(stagectl("history", "fraud", "--format", "json", cwd=repo).stdout)
    assert [e["subject"] for e in data["entries"]] == ["Promote fraud v2", "Add fraud"]
    assert data["entries"][0]["commit"] == second
    assert data["format_version"] == 2
    assert data["entries"][0]["changes"] == [
        {"model": "fraud", "key": "production", "before": ["1"], "after": ["2"]},
        {"model": "fraud", "key": "archived", "before": None, "after": ["1"]},
        {"model": "fraud", "key": "alias", "alias": "champion", "before": None, "after": "2"},
    ]


def test_transition_version_keeps_every_other_byte_and_branch_commit_is_exactly_the_change(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    original = (ROOT / "stages.yaml").read_text().replace("production: 2", "production: 1").replace(
        "archived: [1]", "staging: [2]").replace("champion: 2", "champion: 1")
    base = commit_file(repo, original, "Initial")
    result = stagectl("transition-version", "--model-name", "fraud-detector", "--version", "2",
                      "--stage", "production", "--branch", "promote-fraud-v2", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert git(repo, "branch", "--show-current") == "promote-fraud-v2"
    assert git(repo, "rev-parse", "HEAD~1") == base
    assert git(repo, "diff", "--name-only", "HEAD~1", "HEAD") == "stages.yaml"
    diff = git(repo, "diff", "-U0", "HEAD~1", "HEAD").splitlines()
    changed = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [
        "-    production: 1      # v2 passed shadow evaluation; it replaces v1",
        "-    staging: [2]",
        "+    production: 2      # v2 passed shadow evaluation; it replaces v1",
        "+    staging: []",
        "+    archived: 1",
    ]
    assert git(repo, "log", "-1", "--format=%s") == "Move fraud-detector version 2 to production"
    assert stagectl("validate", cwd=repo).returncode == 0

    alias = stagectl("transition-version", "--model-name", "fraud-detector", "--version", "2", "--alias",
                     "champion", cwd=repo)
    assert alias.returncode == 0, alias.stderr
    assert git(repo, "diff", "-U0").splitlines()[-2:] == ["-      champion: 1", "+      champion: 2"]


def test_export_then_plan_shows_no_changes(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    names = [f"{unique}-a", f"{unique}-yes"]
    seed.make_model(registry, names[0], ["Archived", "Production", "Staging", "None"], aliases={"champion": 2})
    seed.make_model(registry, names[1], ["Production", "Production"])
    out = tmp_path / "stages.yaml"
    result = stagectl("export", *names, "--tracking-uri", mlflow_server.uri, "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert f"  {names[0]}:\n    production: 2\n    staging: 3\n    archived: 1\n    aliases:\n      champion: 2\n" \
        in text
    assert "production: [1, 2]" in text
    plan = stagectl("plan", "--tracking-uri", mlflow_server.uri, "--detailed-exitcode", cwd=tmp_path)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    missing = stagectl("export", f"{unique}-ghost", "--tracking-uri", mlflow_server.uri, cwd=tmp_path)
    assert missing.returncode == 1 and f"model '{unique}-ghost' does not exist" in missing.stderr


def test_in_github_actions_reports_go_to_the_step_summary_and_errors_become_annotations(
        tmp_path: Path, mlflow_server: Server, model: str) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, stages(model, "    production: 1\n"), "Initial")
    git(repo, "switch", "-q", "-c", "pr")
    commit_file(repo, stages(model, "    production: 2\n"), "Promote")
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    ok = stagectl("plan", "--base", "main", "--tracking-uri", mlflow_server.uri, cwd=repo, env=env)
    assert ok.returncode == 0, ok.stderr
    assert summary.read_text().startswith("<!-- stagectl:plan -->\n### stagectl plan: 2 changes to 1 model")

    (repo / "stages.yaml").write_text(stages(model, "    production: 1.10\n    prodution: 2\n"))
    bad = stagectl("validate", cwd=repo, env=env)
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        "::error file=stages.yaml,line=4,col=17::'1.10' is read by YAML as a decimal number, not a version; "
        "versions are whole numbers (quote it if you mean text)",
        f"::error file=stages.yaml,line=5,col=5::models.{model}: unknown key 'prodution'; did you mean 'production'?",
    ]
