"""The GitHub Action (action.yml): its steps run as a runner runs them, installing stagectl from the action's
own checkout into a fresh Python, against a real server and a real git repository."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import jsonschema
import pytest

from tests import seed
from tests.actions import ActionRun, fake_gh, run_action
from tests.conftest import ROOT, Server
from tests.gitrepo import commit_file, git, make_repo

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runner_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh Python environment, as setup-python leaves one: stagectl is not in it. Its dependencies (pip and
    setuptools too) are reachable through a .pth to this one's, so the action's own install step builds and
    installs only stagectl, offline (see PIP_NO_BUILD_ISOLATION below)."""
    home = tmp_path_factory.mktemp("runner-python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True)
    site = next((home / "lib").glob("python3*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return home / "bin"


def _promotion(tmp_path: Path, server: Server, unique: str, branch: str | None = None
               ) -> tuple[seed.ModelRegistryClient, str, Path]:
    """A model with v1 in Production and v2 in Staging, and a repository whose last commit (on `branch`, when
    given) promotes v2."""
    registry = seed.client(server.uri)
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"])
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 1\n    staging: 2\n", "Start")
    if branch:
        git(repo, "switch", "-q", "-c", branch)
    commit_file(repo, f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n    archived: [1]\n",
                "Promote v2")
    return registry, model, repo


PLANTED = {"id": 1, "body": "<!-- stagectl:plan -->\nall clear, merge away", "user": {"type": "User"}}


def _run(runner_python: Path, repo: Path, tmp_path: Path, server: Server, **inputs: str) -> tuple[ActionRun, Path]:
    temp = tmp_path / f"runner-temp-{len(list(tmp_path.glob('runner-temp-*')))}"
    temp.mkdir()
    gh = fake_gh(tmp_path / "gh", [PLANTED])  # a person's comment that copies the marker
    event = {"pull_request": {"number": 7, "base": {"ref": "main"}}} if inputs.pop("pr", "") else {}
    run = run_action(ROOT, inputs, workspace=repo, temp=temp, path=[runner_python, gh],
                     env={"MLFLOW_TRACKING_URI": server.uri, "PIP_NO_BUILD_ISOLATION": "0"}, event=event)
    return run, gh


def test_plan_on_a_pull_request_posts_one_comment_and_reports_its_changes(
        runner_python: Path, tmp_path: Path, second_server: Server, unique: str) -> None:
    registry, model, repo = _promotion(tmp_path, second_server, unique, branch="promote")
    git(repo, "update-ref", "refs/remotes/origin/main", "main")  # what actions/checkout fetches
    before = seed.snapshot(registry, [model], times=True)

    run, gh = _run(runner_python, repo, tmp_path, second_server, command="plan", comment="true", pr="1")
    assert run.exit_code == 0, run.log
    assert run.skipped == ["actions/setup-python", "actions/cache"]
    assert run.outputs["exitcode"] == "0" and run.outputs["changes"] == "2", run.outputs
    report = json.loads(Path(run.outputs["report"]).read_text())
    jsonschema.validate(report, json.loads((ROOT / "schemas/plan.schema.json").read_text()))
    assert report["base"]["ref"] == "origin/main" and report["changes"] == 2
    planted, comment = json.loads((gh / "comments.json").read_text())
    assert planted == PLANTED  # a person's comment with the marker is not the action's to update
    assert comment["body"].startswith("<!-- stagectl:plan -->") and "promote version 2" in comment["body"]
    assert seed.snapshot(registry, [model], times=True) == before  # a plan writes nothing

    again, _ = _run(runner_python, repo, tmp_path, second_server, command="plan", comment="true", pr="1")
    assert again.exit_code == 0, again.log
    assert len(json.loads((gh / "comments.json").read_text())) == 2  # the one comment, updated in place
    calls = [json.loads(line) for line in (gh / "comments.json.calls").read_text().splitlines()]
    assert [c[2] for c in calls if "--method" in c] == ["POST", "PATCH"]


def test_apply_then_drift_through_the_action(
        runner_python: Path, tmp_path: Path, second_server: Server, unique: str) -> None:
    registry, model, repo = _promotion(tmp_path, second_server, unique)

    applied, _ = _run(runner_python, repo, tmp_path, second_server, command="apply")
    assert applied.exit_code == 0, applied.log
    assert applied.outputs["changes"] == "2"
    report = json.loads(Path(applied.outputs["report"]).read_text())
    jsonschema.validate(report, json.loads((ROOT / "schemas/apply.schema.json").read_text()))
    assert report["ok"] is True and [s["status"] for s in report["steps"]] == ["applied", "applied"]
    tags = registry.get_model_version(model, "2").tags
    sha = git(repo, "rev-parse", "HEAD")
    # In Actions the commit and the run are links from the version's page.
    assert tags["stagectl.commit"] == sha
    assert tags["stagectl.commit_url"] == f"https://github.com/acme/ml-deploy/commit/{sha}"
    assert tags["stagectl.run_url"] == "https://github.com/acme/ml-deploy/actions/runs/4242"

    registry.transition_model_version_stage(model, "1", "Production")  # a click in the UI
    drift, _ = _run(runner_python, repo, tmp_path, second_server, command="drift",
                    args="--detailed-exitcode\n--format text")  # words on any line of the input
    assert drift.exit_code == 2 and drift.outputs["exitcode"] == "2", drift.log
    assert drift.outputs["changes"] == "1"
    assert "CHANGED OUTSIDE GIT" in drift.log


def test_a_file_that_does_not_validate_fails_the_step_with_annotations(
        runner_python: Path, tmp_path: Path, second_server: Server) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, "apiVersion: stagectl/v1\nmodels:\n  m: {production: 1.5}\n", "Broken")
    run, _ = _run(runner_python, repo, tmp_path, second_server, command="validate")
    assert run.exit_code == 1 and run.outputs["exitcode"] == "1"
    assert run.outputs["report"] == "" and run.outputs["changes"] == "0"
    assert "::error file=stages.yaml,line=3,col=" in run.log


def test_a_plan_that_cannot_run_replaces_the_comment_with_a_failure_note(
        runner_python: Path, tmp_path: Path, second_server: Server) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, "apiVersion: stagectl/v1\nmodels:\n  m: {production: 1}\n", "Start")
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    run, gh = _run(runner_python, repo, tmp_path, second_server, command="plan", comment="true", pr="1",
                   **{"tracking-uri": "http://127.0.0.1:9"})
    assert run.exit_code == 1 and run.outputs["exitcode"] == "1", run.log
    assert "cannot reach the registry" in run.log
    _, note = json.loads((gh / "comments.json").read_text())
    assert note["body"].startswith("<!-- stagectl:plan -->\n### stagectl plan failed (exit 1)")


def test_the_comment_token_reaches_gh_and_never_stagectl(
        runner_python: Path, tmp_path: Path, second_server: Server, unique: str) -> None:
    _, _, repo = _promotion(tmp_path, second_server, unique, branch="promote")
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    spy = tmp_path / "spy"
    spy.mkdir()
    seen = tmp_path / "stagectl-environment.json"
    (spy / "stagectl").write_text(  # records what stagectl is started with, then is the installed stagectl
        f"#!/bin/sh\n{sys.executable} -c 'import json, os; json.dump(dict(os.environ), open(\"{seen}\", \"w\"))'\n"
        f'exec "{runner_python}/stagectl" "$@"\n')
    (spy / "stagectl").chmod(0o755)
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    gh = fake_gh(tmp_path / "gh", [])
    run = run_action(ROOT, {"command": "plan", "comment": "true", "github-token": "ghs_comment_secret_4411"},
                     workspace=repo, temp=temp, path=[spy, runner_python, gh],
                     env={"MLFLOW_TRACKING_URI": second_server.uri, "PIP_NO_BUILD_ISOLATION": "0"},
                     event={"pull_request": {"number": 7, "base": {"ref": "main"}}})
    assert run.exit_code == 0, run.log
    assert len(json.loads((gh / "comments.json").read_text())) == 1  # gh had the token: it posted
    environment = json.loads(seen.read_text())
    assert "ghs_comment_secret_4411" not in json.dumps(environment)
    assert "ghs_comment_secret_4411" not in run.log
