"""The GitHub workflows and the pre-commit hook that teams copy: audited, schema-checked, least privilege."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from controller import scaffold

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
ACTION = ROOT / "action.yml"
BIN = Path(sys.executable).parent


def load(path: Path) -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def test_the_workflows_exist() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "stagectl-pr.yml", "stagectl-propose.yml",
                                           "stagectl-reconcile.yml"]


def test_zizmor_finds_nothing_even_as_an_auditor() -> None:
    zizmor = shutil.which("zizmor", path=str(BIN))
    assert zizmor, "zizmor is in the dev extra"
    result = subprocess.run([zizmor, "--offline", "--persona", "auditor", *map(str, WORKFLOWS), str(ACTION)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_workflows_match_githubs_schema() -> None:
    checker = shutil.which("check-jsonschema", path=str(BIN))
    assert checker, "check-jsonschema is in the dev extra"
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_action_matches_githubs_schema_and_pins_what_it_uses() -> None:
    checker = shutil.which("check-jsonschema", path=str(BIN))
    assert checker, "check-jsonschema is in the dev extra"
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-actions", str(ACTION)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    action = yaml.safe_load(ACTION.read_text())
    assert set(action["inputs"]) == {"command", "file", "tracking-uri", "args", "comment", "python-version",
                                     "github-token"}
    assert set(action["outputs"]) == {"exitcode", "changes", "report"}
    for step in action["runs"]["steps"]:
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
        else:  # inputs reach the shell through env, never pasted into the script
            assert "${{" not in step["run"], step["run"]


def test_the_example_workflows_are_what_init_writes_with_the_local_action() -> None:
    for name in scaffold.WORKFLOWS:
        expected = scaffold.workflow(name, scaffold.local("./"), "stages.yaml")
        assert (ROOT / ".github/workflows" / name).read_text() == expected, f"{name}: regenerate it from the template"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_and_pinned_actions(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}
    assert "pull_request_target" not in workflow["on"]
    for name, job in workflow["jobs"].items():
        assert "timeout-minutes" in job, name
        granted = job.get("permissions", {})
        assert set(granted.values()) <= {"read", "write"}
        if granted.get("contents") == "write":
            assert name == "propose", f"{name} may not push"
        if granted.get("pull-requests") == "write":
            assert name in ("plan", "propose"), f"{name} may not write to pull requests"
        for step in job["steps"]:
            if "uses" in step:
                assert step["uses"] == "./" or re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), \
                    step["uses"]


def test_pull_request_workflow_spares_forks_and_comments_once() -> None:
    workflow = load(ROOT / ".github/workflows/stagectl-pr.yml")
    assert workflow["on"]["pull_request"]["paths"] == ["stages.yaml"]
    plan = workflow["jobs"]["plan"]
    assert plan["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    (step,) = [s for s in plan["steps"] if s.get("uses") == "./"]
    assert step["with"] == {"command": "plan", "file": "stages.yaml", "comment": True}
    assert "<!-- stagectl:plan -->" in ACTION.read_text()


def test_reconcile_never_cancels_and_skips_superseded_runs() -> None:
    workflow = load(ROOT / ".github/workflows/stagectl-reconcile.yml")
    assert workflow["concurrency"] == {"group": "stagectl-reconcile", "cancel-in-progress": False}
    assert set(workflow["on"]) == {"push", "schedule", "workflow_dispatch"}
    job = workflow["jobs"]["apply"]
    assert job["environment"] == "mlflow-registry"
    steps = {step.get("name"): step for step in job["steps"]}
    assert steps["Apply"]["with"] == {"command": "apply", "file": "stages.yaml"}
    assert steps["Apply"]["if"] == "steps.head.outputs.current == 'true' && github.event_name != 'schedule'"
    assert steps["Drift"]["with"]["command"] == "drift"
    assert steps["Drift"]["with"]["args"] == "--mode ${{ vars.STAGECTL_DRIFT_MODE || 'heal' }} --detailed-exitcode"
    assert workflow["jobs"]["propose"]["permissions"] == {"contents": "write", "pull-requests": "write"}


@pytest.mark.parametrize(("workflow", "job"), [
    ("stagectl-reconcile.yml", "apply"), ("stagectl-reconcile.yml", "propose"), ("stagectl-pr.yml", "plan"),
    ("stagectl-propose.yml", "propose")])
def test_jobs_that_read_the_files_history_check_all_of_it_out(workflow: str, job: str) -> None:
    """apply and drift read the stages file's history (provenance, promote_from, what was last applied) and
    plan --base the base branch: a depth-1 checkout, actions/checkout's default, has neither."""
    steps = load(ROOT / ".github/workflows" / workflow)["jobs"][job]["steps"]
    (checkout,) = [s for s in steps if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"]["fetch-depth"] == 0


def test_scheduled_proposals_keep_one_branch_and_one_pull_request() -> None:
    job = load(ROOT / ".github/workflows/stagectl-reconcile.yml")["jobs"]["propose"]
    steps = {s.get("name"): s for s in job["steps"]}
    assert steps["Propose"]["with"]["args"] == "--mode propose --branch stagectl/drift"
    step = steps["Push the branch and open its pull request"]
    assert 'branch="stagectl/drift"' in step["run"] and "RUN_ID" not in step["run"]
    assert "git push --force" in step["run"]
    assert 'gh pr list --repo "$REPO" --head "$branch" --state open' in step["run"]
    assert step["run"].index("gh pr list") < step["run"].index("gh pr create")


def test_promotions_are_proposed_on_schedule_by_hand_and_on_registry_events_never_writing_the_registry() -> None:
    workflow = load(ROOT / ".github/workflows/stagectl-propose.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch", "repository_dispatch"}
    assert workflow["on"]["repository_dispatch"] == {"types": ["stagectl-propose"]}
    assert workflow["concurrency"] == {"group": "stagectl-propose", "cancel-in-progress": False}
    job = workflow["jobs"]["propose"]
    assert job["environment"] == "mlflow-plan"  # read-only registry credentials
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    steps = {s.get("name"): s for s in job["steps"]}
    assert steps["Propose"]["with"] == {"command": "propose", "file": "stages.yaml"}
    assert steps["Propose"]["env"]["MLFLOW_TRACKING_USERNAME"] == "${{ secrets.MLFLOW_PLAN_USERNAME }}"


def test_pre_commit_hook_validates_stages_files() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "stagectl-validate" and hook["entry"] == "stagectl validate"
    assert re.search(hook["files"], "deploy/stages.yaml") and not re.search(hook["files"], "other.yaml")


def test_validate_checks_every_file_it_is_given(tmp_path: Path) -> None:
    good = tmp_path / "stages.yaml"
    good.write_text((ROOT / "stages.yaml").read_text())
    bad = tmp_path / "bad-stages.yaml"
    bad.write_text("apiVersion: stagectl/v1\nmodels:\n  m: {production: 1.5}\n")
    result = subprocess.run([str(BIN / "stagectl"), "validate", str(good), str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert f"{good}: valid (1 model)" in result.stderr
    assert f"{bad}:3:19: '1.5' is read by YAML as a decimal number" in result.stderr


OFFLINE = [
    ["--help"], ["--version"], ["validate", "--help"], ["validate"], ["history", "fraud-detector"], ["schema"],
    ["completion", "bash"],
    ["transition-version", "--model-name", "fraud-detector", "--version", "3", "--stage", "staging"],
]


@pytest.mark.parametrize("args", OFFLINE, ids=" ".join)
def test_offline_commands_never_import_mlflow(args: list[str], tmp_path: Path) -> None:
    """Nor pydantic or rich, which would cost every start (the pre-commit hook) a tenth of a second."""
    from tests.gitrepo import commit_file, make_repo

    repo = make_repo(tmp_path / "repo")
    commit_file(repo, (ROOT / "stages.yaml").read_text(), "Initial")
    probe = ("import sys; from controller.cli import main; code = main(sys.argv[1:]); "
             "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'pydantic', 'rich')); "
             "print('HEAVY:', loaded); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", probe, *args], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY: []" in result.stdout


def test_init_for_a_stages_file_in_a_folder_points_everything_at_it() -> None:
    pin = scaffold.Pin("a" * 40, "v9.9.9")
    found = {f.path: f.text for f in scaffold.files("deploy/stages.yaml", "x", "acme/stagectl", pin, "{}")}
    assert sorted(found) == [".github/workflows/stagectl-pr.yml", ".github/workflows/stagectl-propose.yml",
                             ".github/workflows/stagectl-reconcile.yml", ".pre-commit-config.yaml",
                             "deploy/schemas/stages.schema.json", "deploy/stages.yaml"]
    for name in scaffold.WORKFLOWS:
        text = found[f".github/workflows/{name}"]
        assert "@FILE@" not in text and "@ACTION@" not in text
        workflow = yaml.safe_load(text)
        workflow["on"] = workflow.pop(True)
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                if step.get("uses", "").startswith("acme/"):
                    assert step["uses"] == f"acme/stagectl@{'a' * 40}" and step["with"]["file"] == "deploy/stages.yaml"
        if name != "stagectl-propose.yml":  # proposals follow the registry, not pushes to the file
            paths = workflow["on"].get("pull_request", workflow["on"].get("push", {})).get("paths")
            assert paths == ["deploy/stages.yaml"]
    assert f"rev: {'a' * 40}  # v9.9.9" in found[".pre-commit-config.yaml"]
