"""The GitOps loop as CI runs it: shallow clones, drift that clears, the commit that decided, reviewable policy,
aliases left behind, and saved plans that know their registry. Real git, a real server, the real command."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from tests import seed
from tests.conftest import ROOT, Server
from tests.e2e.helpers import stagectl
from tests.faultproxy import FaultProxy
from tests.gitrepo import commit_file, git, make_repo

pytestmark = pytest.mark.e2e

WRITES = {"/api/2.0/mlflow/model-versions/transition-stage", "/api/2.0/mlflow/registered-models/alias"}


def _promote(registry: seed.ModelRegistryClient, model: str, version: str, stage: str) -> None:
    """A click in the MLflow UI."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        registry.transition_model_version_stage(model, version, stage, archive_existing_versions=stage == "Production")


def _unrelated_commit(repo: Path, name: str = "README.md") -> str:
    (repo / name).write_text(f"{name}\n")
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"Touch {name}")
    return git(repo, "rev-parse", "HEAD")


# -- shallow clones ----------------------------------------------------------------------------------------

@pytest.fixture
def history_repo(tmp_path: Path, registry: seed.ModelRegistryClient, unique: str) -> tuple[Path, str, str]:
    """A repository whose promotion of v2 passes promote_from only through an earlier commit's staging list."""
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "None", "None"])  # v2 is not in Staging now
    repo = make_repo(tmp_path / "origin")
    head = "apiVersion: stagectl/v1\ndefaults: {policy: {promote_from: staging}}\nmodels:\n"
    commit_file(repo, head + f"  {model}:\n    production: 1\n    staging: [2]\n", "Stage v2")
    decided = commit_file(repo, head + f"  {model}:\n    production: 2\n    staging: []\n    archived: [1]\n",
                          "Promote v2")
    _unrelated_commit(repo)
    return repo, model, decided


def _shallow_clone(origin: Path, name: str) -> Path:
    into = origin.parent / name
    git(origin.parent, "clone", "-q", "--depth", "1", f"file://{origin}", str(into))
    assert git(into, "rev-parse", "--is-shallow-repository") == "true"
    return into


def test_every_command_works_on_a_depth_1_clone_fetching_the_history_it_needs(
        history_repo: tuple[Path, str, str], mlflow_server: Server, registry: seed.ModelRegistryClient) -> None:
    origin, model, decided = history_repo
    uri = ["--tracking-uri", mlflow_server.uri]
    commands = [["validate"], ["plan", *uri, "--detailed-exitcode"], ["plan", *uri, "--base", "HEAD"],
                ["plan", *uri, "--out", "plan.json"], ["history", model], ["drift", *uri],
                ["cleanup-report", *uri], ["resolve", model, "--stage", "production", *uri],
                ["transition-version", "--model-name", model, "--version", "3", "--stage", "staging"]]
    for i, command in enumerate(commands):
        clone = _shallow_clone(origin, f"clone-{i}")  # each command on a fresh depth-1 clone
        result = stagectl(*command, cwd=clone)
        if "--base" in command:  # HEAD declares nothing in staging: the gate, rightly, is not met on that base
            assert result.returncode == 1 and "1 gate violated" in result.stderr, result.stderr
        else:
            assert result.returncode in (0, 2), f"{command}: {result.stderr}"
        assert "unexpected" not in result.stderr
    history = json.loads(stagectl("history", model, "--format", "json", cwd=_shallow_clone(origin, "h")).stdout)
    assert [e["subject"] for e in history["entries"]] == ["Promote v2", "Stage v2"]

    clone = _shallow_clone(origin, "apply")
    applied = stagectl("apply", *uri, cwd=clone)
    assert applied.returncode == 0, applied.stderr
    assert "ok  promote_from" not in applied.stderr
    tags = registry.get_model_version(model, "2").tags
    assert tags["stagectl.commit"] == decided and tags["stagectl.commit_subject"] == "Promote v2"
    assert tags["stagectl.applied_commit"] == git(origin, "rev-parse", "HEAD")


def test_a_depth_1_clone_that_cannot_fetch_says_so_in_one_line_and_writes_nothing(
        history_repo: tuple[Path, str, str], mlflow_server: Server, registry: seed.ModelRegistryClient) -> None:
    origin, model, _ = history_repo
    clone = _shallow_clone(origin, "clone")
    git(clone, "remote", "set-url", "origin", f"file://{origin.parent}/gone")
    with FaultProxy(mlflow_server.uri) as proxy:
        for command in (["plan"], ["apply"], ["history", model]):
            result = stagectl(*command, *(["--tracking-uri", proxy.uri] if command[0] != "history" else []),
                              cwd=clone)
            assert result.returncode == 1, (command, result.stdout, result.stderr)
            assert result.stderr.count("\n") == 1 and "fetch-depth: 0" in result.stderr, result.stderr
            assert "unexpected" not in result.stderr
    assert not [path for method, path in proxy.seen if method == "POST"]  # nothing written, not even a lease
    assert seed.snapshot(registry, [model])[model]["stages"] == {"1": "Production", "2": "None", "3": "None"}

    # Once the registry matches the file, the history is not needed: plan and drift answer on the clone.
    assert stagectl("apply", "--tracking-uri", mlflow_server.uri, cwd=origin).returncode == 0
    for command in (["plan", "--detailed-exitcode"], ["drift", "--detailed-exitcode"]):
        result = stagectl(*command, "--tracking-uri", mlflow_server.uri, cwd=clone)
        assert result.returncode == 0, (command, result.stdout, result.stderr)


# -- drift that clears -------------------------------------------------------------------------------------

def _file(model: str, staging: int, challenger: int) -> str:
    return (f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 1\n    staging: [{staging}]\n"
            f"    aliases: {{champion: 1, challenger: {challenger}}}\n")


def test_accepting_a_change_made_in_the_ui_through_a_proposal_clears_drift(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging", "None"], aliases={"champion": 1, "challenger": 2})
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, _file(model, 3, 3), "Stage v3 as challenger")
    uri = ["--tracking-uri", mlflow_server.uri]
    assert stagectl("apply", *uri, cwd=repo).returncode == 0
    registry.set_registered_model_alias(model, "challenger", "2")  # in the UI

    report = stagectl("drift", *uri, "--detailed-exitcode", cwd=repo)
    assert report.returncode == 2 and f"{model}: CHANGED OUTSIDE GIT" in report.stdout, report.stdout
    proposed = stagectl("drift", *uri, "--mode", "propose", cwd=repo)
    assert proposed.returncode == 0, proposed.stderr
    assert git(repo, "branch", "--show-current") == "stagectl/drift"
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge the proposal", "stagectl/drift")

    merged = stagectl("apply", *uri, cwd=repo)
    assert merged.returncode == 0 and "No changes" in merged.stdout, merged.stdout + merged.stderr
    clean = stagectl("drift", *uri, "--detailed-exitcode", cwd=repo)
    assert clean.returncode == 0, clean.stdout
    assert f"{model}: in sync" in clean.stdout

    # Nothing to propose: no branch, no commit, the checkout where it was.
    refs, head = git(repo, "for-each-ref", "refs/heads"), git(repo, "rev-parse", "HEAD")
    idle = stagectl("drift", *uri, "--mode", "propose", cwd=repo)
    assert idle.returncode == 0 and "Nothing to propose" in idle.stderr, idle.stderr
    assert (git(repo, "for-each-ref", "refs/heads"), git(repo, "rev-parse", "HEAD")) == (refs, head)
    assert git(repo, "branch", "--show-current") == "main" and git(repo, "status", "--porcelain") == ""

    # Scheduled runs with drift open: the same branch, reset onto main and updated, never a second one.
    registry.set_registered_model_alias(model, "champion", "3")
    for _ in range(2):
        assert stagectl("drift", *uri, "--mode", "propose", cwd=repo).returncode == 0
        assert git(repo, "rev-parse", "stagectl/drift~1") == git(repo, "rev-parse", "main")
        git(repo, "switch", "-q", "main")
    assert git(repo, "branch", "--list", "stagectl/*").split() == ["stagectl/drift"]


def test_a_model_adopted_through_export_is_in_sync_and_a_merge_since_is_pending(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging", "None"], aliases={"champion": 1})
    repo = make_repo(tmp_path / "repo")
    uri = ["--tracking-uri", mlflow_server.uri]
    assert stagectl("export", model, *uri, "-o", "stages.yaml", cwd=repo).returncode == 0
    git(repo, "add", "stages.yaml")
    git(repo, "commit", "-q", "-m", "Adopt the registry")
    adopted = stagectl("drift", *uri, "--detailed-exitcode", cwd=repo)
    assert adopted.returncode == 0 and f"{model}: in sync" in adopted.stdout, adopted.stdout

    adoption = git(repo, "rev-parse", "HEAD")
    text = (repo / "stages.yaml").read_text().replace("champion: 1", "champion: 2")
    commit_file(repo, text, "Point champion at v2")  # merged, not yet applied
    pending = stagectl("drift", *uri, "--detailed-exitcode", "--format", "json", cwd=repo)
    assert pending.returncode == 0, pending.stdout + pending.stderr
    (entry,) = json.loads(pending.stdout)["models"]
    assert (entry["status"], entry["matches_commit"]) == ("pending", adoption)

    _promote(registry, model, "3", "Staging")  # in the UI: matches no commit, and no apply is recorded
    assert stagectl("drift", *uri, "--detailed-exitcode", cwd=repo).returncode == 2


# -- provenance --------------------------------------------------------------------------------------------

def test_heal_tags_with_the_commit_that_decided_the_model_not_whatever_is_head(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    a, b = f"{unique}-a", f"{unique}-b"
    for name in (a, b):
        seed.make_model(registry, name, ["Production", "Staging"])
    repo = make_repo(tmp_path / "repo")
    body = "apiVersion: stagectl/v1\nmodels:\n  {a}:\n    production: 1\n    staging: [2]\n  {b}:\n{b_body}"
    declared_a = commit_file(repo, body.format(a=a, b=b, b_body="    production: 1\n    staging: [2]\n"), "Manage")
    declared_b = commit_file(repo, body.format(a=a, b=b, b_body="    production: 2\n    archived: [1]\n"),
                             "Promote b v2", author="Bo Ops <bo@example.com>")
    head = _unrelated_commit(repo)
    uri = ["--tracking-uri", mlflow_server.uri]
    assert stagectl("apply", *uri, cwd=repo).returncode == 0
    b_tags = registry.get_model_version(b, "2").tags
    assert (b_tags["stagectl.commit"], b_tags["stagectl.commit_author"], b_tags["stagectl.applied_commit"]) == (
        declared_b, "Bo Ops <bo@example.com>", head)

    _promote(registry, a, "2", "Production")  # in the UI
    later = _unrelated_commit(repo, "NOTES.md")
    healed = stagectl("drift", *uri, "--mode", "heal", cwd=repo)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    for version in ("1", "2"):
        tags = registry.get_model_version(a, version).tags
        assert (tags["stagectl.commit"], tags["stagectl.commit_subject"], tags["stagectl.applied_commit"]) == (
            declared_a, "Manage", later)
    history = json.loads(stagectl("history", a, "--format", "json", cwd=repo).stdout)
    assert history["entries"][0]["commit"] == declared_a  # what history shows for the model
    assert registry.get_model_version(b, "2").tags["stagectl.commit"] == declared_b  # untouched by heal


def test_apply_outside_git_refuses_without_a_request_unless_allowed_and_then_the_tags_say_so(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"])
    (tmp_path / "stages.yaml").write_text(f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n")
    with FaultProxy(mlflow_server.uri) as proxy:
        refused = stagectl("apply", "--tracking-uri", proxy.uri, cwd=tmp_path)
    assert refused.returncode == 1
    assert "stages.yaml is not in a git checkout" in refused.stderr and "--allow-dirty" in refused.stderr
    assert proxy.seen == []
    allowed = stagectl("apply", "--allow-dirty", "--tracking-uri", mlflow_server.uri, cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    tags = registry.get_model_version(model, "2").tags
    assert tags["stagectl.commit"] == tags["stagectl.applied_commit"] == "none (applied outside git with --allow-dirty)"


# -- review sees every change ------------------------------------------------------------------------------

@pytest.mark.parametrize("lifted", ["frozen", "require_tags"])
def test_plan_base_shows_a_lifted_freeze_or_a_removed_gate_in_every_format(
        lifted: str, tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"])
    policy = {"frozen": '{frozen: "incident 42"}', "require_tags": "{require_tags: {validated: \"true\"}}"}[lifted]
    before = {"frozen": "incident 42", "require_tags": "validated=true"}[lifted]
    repo = make_repo(tmp_path / "repo")
    body = f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 1\n    staging: [2]\n"
    commit_file(repo, body + f"    policy: {policy}\n", "Hold")
    git(repo, "switch", "-q", "-c", "lift")
    commit_file(repo, body, f"Lift {lifted}")
    uri = ["--tracking-uri", mlflow_server.uri, "--base", "main"]

    text = stagectl("plan", *uri, cwd=repo)
    assert text.returncode == 0, text.stderr
    assert f"{model}  policy.{lifted}: {before} → —" in text.stdout
    assert "nothing declared differs" not in text.stdout
    markdown = stagectl("plan", *uri, "--format", "markdown", cwd=repo).stdout
    assert "Change under review: 1 declared change to 1 model" in markdown
    assert f"| {model} | policy.{lifted}: {before} → — |" in markdown
    data = json.loads(stagectl("plan", *uri, "--format", "json", cwd=repo).stdout)
    jsonschema.validate(data, json.loads((ROOT / "schemas/plan.schema.json").read_text()))
    assert data["base"]["changes"] == [{"model": model, "key": f"policy.{lifted}", "before": before, "after": None}]

    history = stagectl("history", model, cwd=repo)
    assert history.stdout.splitlines()[3].endswith(f"policy.{lifted}: {before} → —"), history.stdout


# -- aliases left behind -----------------------------------------------------------------------------------

def test_plan_warns_of_an_alias_left_on_a_version_it_archives_and_transition_can_move_it(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"], aliases={"champion": 1})
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 1\n    staging: [2]\n"
                      "    aliases: {champion: 1}\n", "Initial")
    moved = stagectl("transition-version", "--model-name", model, "--version", "2", "--stage", "production",
                     cwd=repo)
    assert moved.returncode == 0, moved.stderr
    assert "alias champion stays on version 1, which moves to archived; pass --move-aliases" in moved.stderr

    uri = ["--tracking-uri", mlflow_server.uri]
    line = f"{model}: alias champion points at version 1, which will be Archived after this plan"
    text = stagectl("plan", *uri, cwd=repo).stdout
    assert "Warnings:" in text and line in text
    assert f"> - {line}" in stagectl("plan", *uri, "--format", "markdown", cwd=repo).stdout
    data = json.loads(stagectl("plan", *uri, "--format", "json", cwd=repo).stdout)
    jsonschema.validate(data, json.loads((ROOT / "schemas/plan.schema.json").read_text()))
    assert [(w["model"], w["alias"], w["version"], w["stage"]) for w in data["warnings"]] == [
        (model, "champion", "1", "Archived")]

    git(repo, "checkout", "--", "stages.yaml")
    along = stagectl("transition-version", "--model-name", model, "--version", "2", "--stage", "production",
                     "--move-aliases", cwd=repo)
    assert along.returncode == 0 and "alias champion moves from version 1 to version 2" in along.stderr
    assert "aliases: {champion: 2}" in (repo / "stages.yaml").read_text()
    assert "warnings" not in json.loads(stagectl("plan", *uri, "--format", "json", cwd=repo).stdout)


# -- saved plans carry their registry ----------------------------------------------------------------------

def test_a_saved_plan_applies_to_its_own_registry_and_a_second_time_is_already_applied(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"], aliases={"champion": 1})
    repo = make_repo(tmp_path / "repo")
    decided = commit_file(repo, f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n"
                                "    aliases: {champion: 2}\n", "Promote v2")
    head = _unrelated_commit(repo)
    with FaultProxy(mlflow_server.uri) as proxy:
        assert stagectl("plan", "--tracking-uri", proxy.uri, "--out", "plan.json", cwd=repo).returncode == 0
        elsewhere = stagectl("apply", "plan.json", cwd=repo, env={"MLFLOW_TRACKING_URI": "sqlite:///other.db"})
        assert elsewhere.returncode == 1 and f"was made for {proxy.uri}, not sqlite:///other.db" in elsewhere.stderr

        applied = stagectl("apply", "plan.json", cwd=repo)  # no registry named: the plan's own
        assert applied.returncode == 0, applied.stdout + applied.stderr
        first = len(proxy.seen)
        again = stagectl("apply", "plan.json", cwd=repo)
        assert again.returncode == 0, again.stderr
        assert "already applied" in again.stderr and "stale" not in again.stderr
        assert not [path for _, path in proxy.seen[first:] if path in WRITES]
    assert Counter(path for _, path in proxy.seen[:first])["/api/2.0/mlflow/model-versions/transition-stage"] == 1
    assert seed.snapshot(registry, [model])[model] == {"stages": {"1": "Archived", "2": "Production"},
                                                       "aliases": {"champion": "2"}}
    tags = registry.get_model_version(model, "2").tags
    assert (tags["stagectl.commit"], tags["stagectl.applied_commit"]) == (decided, head)
