"""gitops on real repositories: shallow clones, the provenance of each model, the proposal branch."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller import desired, gitops, pipeline
from tests.gitrepo import commit_file, git, make_repo


def _stages(fraud: int, churn: int) -> str:
    return f"apiVersion: stagectl/v1\nmodels:\n  fraud: {{production: {fraud}}}\n  churn: {{production: {churn}}}\n"


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "origin")
    commit_file(repo, _stages(1, 1), "Manage fraud and churn")
    commit_file(repo, _stages(2, 1), "Promote fraud v2")
    commit_file(repo, _stages(2, 3), "Promote churn v3")
    (repo / "README").write_text("x")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "Unrelated")
    return repo


def _shallow(origin: Path, into: Path) -> Path:
    git(origin.parent, "clone", "-q", "--depth", "1", f"file://{origin}", str(into))
    return into


def test_a_shallow_clone_fetches_the_history_it_needs_from_its_remote(origin: Path, tmp_path: Path) -> None:
    clone = _shallow(origin, tmp_path / "clone")
    checkout = gitops.Checkout(clone / "stages.yaml")
    assert checkout.is_shallow()
    subjects = [c.subject for c, _, _ in checkout.history()]
    assert subjects == ["Promote churn v3", "Promote fraud v2", "Manage fraud and churn"]
    assert not checkout.is_shallow()


def test_a_shallow_clone_without_a_reachable_remote_says_how_to_get_the_history(origin: Path, tmp_path: Path) -> None:
    clone = _shallow(origin, tmp_path / "clone")
    git(clone, "remote", "set-url", "origin", f"file://{tmp_path}/gone")
    checkout = gitops.Checkout(clone / "stages.yaml")
    with pytest.raises(gitops.ShallowCloneError) as raised:
        list(checkout.history("drift"))
    message = str(raised.value)
    assert "shallow clone" in message and "drift needs the history of stages.yaml" in message
    assert "fetch-depth: 0" in message and "\n" not in message
    git(clone, "remote", "remove", "origin")
    with pytest.raises(gitops.ShallowCloneError):
        list(checkout.history())


def test_provenance_names_the_commit_that_last_changed_each_model_and_the_one_checked_out(origin: Path) -> None:
    file = origin / "stages.yaml"
    head = git(origin, "rev-parse", "HEAD")
    fraud_commit = git(origin, "rev-parse", "HEAD~2")
    found = pipeline.provenance_of(file, desired.load(file), allow_dirty=False)
    fraud, churn = found.tags_for("fraud"), found.tags_for("churn")
    assert fraud["stagectl.commit"] == fraud_commit and fraud["stagectl.commit_subject"] == "Promote fraud v2"
    assert churn["stagectl.commit"] == git(origin, "rev-parse", "HEAD~1")
    assert fraud["stagectl.applied_commit"] == churn["stagectl.applied_commit"] == head
    assert fraud["stagectl.commit_author"] == "Ana Lyst <ana@example.com>"


def test_provenance_of_a_file_with_uncommitted_changes_names_head_for_the_models_they_change(origin: Path) -> None:
    file = origin / "stages.yaml"
    file.write_text(_stages(2, 4))
    with pytest.raises(gitops.GitError, match="uncommitted changes"):
        pipeline.provenance_of(file, desired.load(file), allow_dirty=False)
    found = pipeline.provenance_of(file, desired.load(file), allow_dirty=True)
    assert found.tags_for("churn")["stagectl.commit"] == git(origin, "rev-parse", "HEAD")
    assert found.tags_for("churn")["stagectl.commit_subject"].endswith("(applied with uncommitted changes to "
                                                                       "the stages file)")
    assert found.tags_for("fraud")["stagectl.commit_subject"] == "Promote fraud v2"


def test_provenance_outside_git_is_refused_unless_allowed_and_then_says_so(tmp_path: Path) -> None:
    file = tmp_path / "stages.yaml"
    file.write_text(_stages(1, 1))
    with pytest.raises(gitops.GitError, match=r"not in a git checkout.*--allow-dirty"):
        pipeline.provenance_of(file, desired.load(file), allow_dirty=False)
    tags = pipeline.provenance_of(file, desired.load(file), allow_dirty=True).tags_for("fraud")
    assert tags["stagectl.commit"] == "none (applied outside git with --allow-dirty)"


def test_the_proposal_branch_is_reset_and_reused(origin: Path) -> None:
    checkout = gitops.Checkout(origin / "stages.yaml")
    first = checkout.commit_on_new_branch("stagectl/drift", _stages(5, 3), "Accept 5")
    git(origin, "switch", "-q", "main")
    with pytest.raises(gitops.GitError, match="already exists"):
        checkout.commit_on_new_branch("stagectl/drift", _stages(6, 3), "Accept 6")
    second = checkout.commit_on_new_branch("stagectl/drift", _stages(6, 3), "Accept 6", replace=True)
    assert git(origin, "rev-parse", "stagectl/drift~1") == git(origin, "rev-parse", "main")
    assert second.sha != first.sha and git(origin, "log", "-1", "--format=%s", "stagectl/drift") == "Accept 6"


@pytest.mark.parametrize(("remote", "web"), [
    ("https://x-access-token:ghs_secret@github.com/acme/ml-deploy.git", "https://github.com/acme/ml-deploy"),
    ("git@github.com:acme/ml-deploy.git", "https://github.com/acme/ml-deploy"),
    ("ssh://git@gitlab.example.com:2222/team/models", "https://gitlab.example.com/team/models"),
    ("https://git.example.com:8443/team/models.git", "https://git.example.com:8443/team/models"),
    ("http://git.internal/team/models", "http://git.internal/team/models"),
    ("/srv/git/ml-deploy.git", None),  # a local remote has no web page
    (None, None),
])
def test_a_commit_links_to_the_repositorys_web_page_when_one_is_known(
        tmp_path: Path, remote: str | None, web: str | None) -> None:
    repo = make_repo(tmp_path / "repo")
    sha = commit_file(repo, _stages(1, 1), "Manage fraud and churn")
    if remote:
        git(repo, "remote", "add", "origin", remote)
    checkout = gitops.Checkout(repo / "stages.yaml")
    assert checkout.web_url({}) == web
    # GitHub Actions names the repository itself, whatever the remote.
    actions = {"GITHUB_SERVER_URL": "https://ghe.example/", "GITHUB_REPOSITORY": "acme/ml"}
    assert checkout.web_url(actions) == "https://ghe.example/acme/ml"
    provenance = gitops.Provenance(checkout.head(), web=web)
    tags = provenance.tags_for("fraud")
    assert tags["stagectl.commit"] == tags["stagectl.applied_commit"] == sha  # the full SHA, as scripts read it
    assert tags.get("stagectl.commit_url") == (f"{web}/commit/{sha}" if web else None)
    assert "ghs_secret" not in str(tags)
