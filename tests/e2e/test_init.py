"""stagectl init in a team's fresh repository, against a real server: what it writes validates, plans in sync,
passes zizmor and GitHub's workflow schema; it never overwrites without --force, and a second run changes
nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from controller import scaffold
from tests import seed
from tests.conftest import ROOT, Server
from tests.e2e.helpers import stagectl
from tests.gitrepo import git, make_repo

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
WRITTEN = ["stages.yaml", "schemas/stages.schema.json", ".github/workflows/stagectl-pr.yml",
           ".github/workflows/stagectl-propose.yml", ".github/workflows/stagectl-reconcile.yml",
           ".pre-commit-config.yaml"]


def _tree(repo: Path) -> dict[str, bytes]:
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(repo.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(repo).parts}


def test_init_writes_what_a_team_needs_and_a_second_run_changes_nothing(
        tmp_path: Path, second_server: Server, unique: str) -> None:
    registry = seed.client(second_server.uri)
    models = [f"{unique}-fraud", f"{unique}-churn"]
    seed.make_model(registry, models[0], ["Production", "Staging"])
    seed.make_model(registry, models[1], ["Archived", "Production"])
    repo = make_repo(tmp_path / "team")
    git(repo, "remote", "add", "origin", "git@github.com:acme/ml-deploy.git")
    uri = ["--tracking-uri", second_server.uri]

    shown = stagectl("init", *models, *uri, "--dry-run", cwd=repo)
    assert shown.returncode == 0, shown.stderr
    assert all(f"create     {path}" in shown.stderr for path in WRITTEN), shown.stderr
    assert _tree(repo) == {}  # --dry-run only shows

    done = stagectl("init", *models, *uri, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert sorted(_tree(repo)) == sorted(WRITTEN)
    assert "mlflow-plan" in done.stderr and "mlflow-registry" in done.stderr  # the next steps
    written = _tree(repo)

    # The stages file is the registry's state: it validates and plans in sync.
    assert stagectl("validate", cwd=repo).returncode == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Adopt stagectl")
    planned = stagectl("plan", *uri, "--detailed-exitcode", cwd=repo)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert sorted(yaml.safe_load((repo / "stages.yaml").read_text())["models"]) == sorted(models)
    assert (repo / "schemas/stages.schema.json").read_text() == scaffold.schema_text()

    # The workflows use the action pinned to this stagectl's commit, and pass the auditors.
    workflows = [repo / ".github/workflows" / name for name in scaffold.WORKFLOWS]
    head = git(ROOT, "rev-parse", "HEAD")
    for path in workflows:
        uses = [s["uses"] for job in yaml.safe_load(path.read_text())["jobs"].values() for s in job["steps"]
                if "uses" in s and not s["uses"].startswith("actions/")]
        assert uses and set(uses) == {f"{scaffold.REPOSITORY}@{head}"}, uses
    zizmor = subprocess.run([shutil.which("zizmor", path=str(BIN)) or "zizmor", "--offline", "--persona",
                             "auditor", *map(str, workflows)], capture_output=True, text=True)
    assert zizmor.returncode == 0 and "No findings to report" in zizmor.stdout + zizmor.stderr, zizmor.stdout
    checked = subprocess.run([shutil.which("check-jsonschema", path=str(BIN)) or "check-jsonschema",
                              "--builtin-schema", "vendor.github-workflows", *map(str, workflows)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (hook,) = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())["repos"]
    assert hook["rev"] == head and [h["id"] for h in hook["hooks"]] == ["stagectl-validate"]

    # A second run needs nothing from the registry (this one is unreachable) and writes nothing.
    again = stagectl("init", "--tracking-uri", "http://127.0.0.1:9", cwd=repo)
    assert again.returncode == 0, again.stderr
    assert "Nothing to write" in again.stderr
    assert _tree(repo) == written

    # A file the team changed is kept, unless --force.
    ours = repo / ".github/workflows/stagectl-pr.yml"
    ours.write_text(ours.read_text() + "# our own note\n")
    kept = stagectl("init", *uri, cwd=repo)
    assert "keep       .github/workflows/stagectl-pr.yml (exists and differs; --force to overwrite)" in kept.stderr
    assert ours.read_text().endswith("# our own note\n")
    # --force brings the workflows back; the stages file is the team's, never replaced.
    declared = repo / "stages.yaml"
    declared.write_text(declared.read_text().replace(f"  {models[0]}:", f"  # promoting next\n  {models[0]}:"))
    forced = stagectl("init", *uri, "--force", cwd=repo)
    assert forced.returncode == 0, forced.stderr
    assert "overwrite  .github/workflows/stagectl-pr.yml" in forced.stderr
    assert "keep       stages.yaml (exists" in forced.stderr
    assert _tree(repo) == {**written, "stages.yaml": declared.read_bytes()}
    assert b"# promoting next" in declared.read_bytes()


def test_init_keeps_a_teams_pre_commit_config_and_says_what_to_add(
        tmp_path: Path, second_server: Server, unique: str) -> None:
    repo = make_repo(tmp_path / "team")
    own = "repos:\n  - repo: https://github.com/psf/black\n    rev: 24.1.0\n    hooks:\n      - id: black\n"
    (repo / ".pre-commit-config.yaml").write_text(own)
    (repo / "stages.yaml").write_text("apiVersion: stagectl/v1\nmodels: {}\n")
    done = stagectl("init", "--tracking-uri", "http://127.0.0.1:9", cwd=repo)  # the stages file is kept
    assert done.returncode == 0, done.stderr
    assert (repo / ".pre-commit-config.yaml").read_text() == own
    assert "Add to .pre-commit-config.yaml under repos:" in done.stderr and "id: stagectl-validate" in done.stderr


def test_init_refuses_names_it_cannot_write_into_a_workflow_and_folders_that_lead_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "team")
    odd = stagectl("init", "-f", "deploy/stages #1.yaml", "--tracking-uri", "http://127.0.0.1:9", cwd=repo)
    assert odd.returncode == 1 and "give it a path of letters, digits" in odd.stderr, odd.stderr
    bad = stagectl("init", "--action", "docker://evil/x", "--tracking-uri", "http://127.0.0.1:9", cwd=repo)
    assert bad.returncode == 1 and "is not OWNER/REPO[@REF]" in bad.stderr, bad.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / ".github").symlink_to(elsewhere)
    (repo / "stages.yaml").write_text("apiVersion: stagectl/v1\nmodels: {}\n")
    linked = stagectl("init", "--tracking-uri", "http://127.0.0.1:9", cwd=repo)
    assert linked.returncode == 1 and "symlinked folder" in linked.stderr, linked.stderr
    assert list(elsewhere.iterdir()) == [] and not (repo / "schemas").exists()


def test_init_outside_git_says_where_to_run_it(tmp_path: Path) -> None:
    result = stagectl("init", "--tracking-uri", "http://127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 1
    assert "not inside a git repository: run stagectl init in the repository" in result.stderr
    assert list(tmp_path.iterdir()) == []
