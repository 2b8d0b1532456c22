"""Files that are not what they seem, and odd branch names: refused with one clear line, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import stagectl
from tests.gitrepo import commit_file, git, make_repo

pytestmark = pytest.mark.e2e

STAGES = "apiVersion: stagectl/v1\nmodels:\n  fraud-detector:\n    production: 1\n    staging: [2]\n"
PRIVATE = "aws_secret_access_key: canary-outside-4471\nmodels: [not, a, stages, file]\n"
UNREACHABLE = ["--tracking-uri", "http://127.0.0.1:9"]  # nothing listens: a request would fail differently


def test_a_committed_symlink_to_a_file_outside_the_repository_is_never_read(tmp_path: Path) -> None:
    outside = tmp_path / "home" / "credentials.yaml"
    outside.parent.mkdir()
    outside.write_text(PRIVATE)
    repo = make_repo(tmp_path / "repo")
    (repo / "stages.yaml").symlink_to(outside)
    git(repo, "add", "stages.yaml")
    git(repo, "commit", "-q", "-m", "A link, as a fork's pull request could add")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    for command in (["validate"], ["plan", *UNREACHABLE], ["apply", *UNREACHABLE], ["drift", *UNREACHABLE],
                    ["transition-version", "--model-name", "m", "--version", "2", "--stage", "production"]):
        result = stagectl(*command, cwd=repo, env=env)
        assert result.returncode == 1, (command, result.stderr)
        assert "stages.yaml: is a symlink to a file outside its git repository" in result.stderr, result.stderr
        assert "canary-outside" not in result.stdout + result.stderr and "aws_secret" not in result.stderr
        assert "unexpected" not in result.stderr
    assert outside.read_text() == PRIVATE


def test_transition_version_and_propose_never_write_through_a_symlink(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "config").mkdir()
    commit_file(repo, STAGES, "Initial", name="config/stages.yaml")
    (repo / "stages.yaml").symlink_to("config/stages.yaml")
    git(repo, "add", "stages.yaml")
    git(repo, "commit", "-q", "-m", "Link")
    assert stagectl("validate", cwd=repo).returncode == 0  # a link within the repository is read
    for branch in ([], ["--branch", "promote"]):
        result = stagectl("transition-version", "--model-name", "fraud-detector", "--version", "2", "--stage",
                          "production", *branch, cwd=repo)
        assert result.returncode == 1
        assert result.stderr.startswith("stages.yaml: is a symlink; stagectl does not write through one"), \
            result.stderr
    propose = stagectl("drift", "--mode", "propose", *UNREACHABLE, cwd=repo)
    assert propose.returncode == 1 and "is a symlink; stagectl does not write through one" in propose.stderr
    assert (repo / "config" / "stages.yaml").read_text() == STAGES
    assert git(repo, "branch", "--list").split() == ["*", "main"] and git(repo, "status", "--porcelain") == ""


def test_export_refuses_an_output_file_that_is_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (tmp_path / "out.yaml").symlink_to(victim)
    result = stagectl("export", *UNREACHABLE, "-o", "out.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ("out.yaml: is a symlink; stagectl does not write through one. Write to the file it "
                             "points to, or remove the link first\n")
    assert victim.read_text() == "keep me\n"


@pytest.mark.parametrize(("branch", "says"), [
    ("@{-1}", "is not a name for a new branch"),
    ("refs/heads/x", "is a full ref name; give the branch's name alone, such as 'x'"),
    ("--upload-pack=touch pwned", "is not a name for a new branch"),
    ("-", "is not a name for a new branch"),
    ("bad..name", "is not a valid branch name"),
    ("main", "branch 'main' already exists"),
])
def test_odd_branch_names_are_refused_with_a_clear_message(tmp_path: Path, branch: str, says: str) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, STAGES, "Initial")
    git(repo, "switch", "-q", "-c", "other")
    git(repo, "switch", "-q", "main")  # so that @{-1} names a branch
    refs = git(repo, "for-each-ref", "--format=%(refname)")
    result = stagectl("transition-version", "--model-name", "fraud-detector", "--version", "2", "--stage",
                      "production", f"--branch={branch}", cwd=repo)
    assert result.returncode == 1, result.stdout + result.stderr
    assert says in result.stderr and "unexpected" not in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert git(repo, "for-each-ref", "--format=%(refname)") == refs
    assert git(repo, "branch", "--show-current") == "main" and git(repo, "status", "--porcelain") == ""
    assert not (repo / "pwned").exists()
