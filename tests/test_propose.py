"""Which promotions propose themselves (pure), the branches they go on, and how a proposal is written to git."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from controller import desired, propose
from controller.errors import ConfigError
from controller.gitops import Checkout, GitError
from controller.model import Lifecycle, LiveModel, LiveVersion, Mode, Policy, Stage
from tests.factories import A, N, P, S, want
from tests.gitrepo import commit_file, git, make_repo


def have(stages: dict[int, Stage], status: dict[int, str] | None = None,
         aliases: dict[str, int] | None = None) -> LiveModel:
    return LiveModel("m", {str(v): LiveVersion(str(v), s, status=(status or {}).get(v, "READY"))
                           for v, s in stages.items()}, {a: str(v) for a, v in (aliases or {}).items()})


def proposing(*stages: str, **declared: object) -> object:
    return dataclasses.replace(want(**declared), policy=Policy(propose=frozenset(stages)))  # type: ignore[arg-type]


def found(model: object, live: LiveModel) -> list[tuple[str, str]]:
    return [(c.stage, c.version) for c in propose.candidates(model, live)]  # type: ignore[arg-type]


def test_staging_proposes_the_newest_ready_version_newer_than_every_version_the_file_names() -> None:
    live = have({1: P, 2: A, 3: N, 4: N, 5: N}, status={5: "PENDING_REGISTRATION"})
    assert found(proposing("staging", production=[1], archived=[2]), live) == [("staging", "4")]
    # A version the file names (here through an alias) has been decided on: nothing newer, nothing proposed.
    assert found(dataclasses.replace(proposing("staging", production=[1]), aliases={"shadow": "4"}), live) == []
    assert found(proposing("staging"), have({1: N})) == [("staging", "1")]  # a file naming no version yet


def test_production_proposes_staging_versions_newer_than_production_newest_first() -> None:
    live = have({1: P, 2: S, 3: S, 4: N})
    assert found(proposing("production", production=[3], staging=[2]), live) == []  # never backwards
    assert found(proposing("production", production=[1], staging=[2, 3]), live) == [
        ("production", "3"), ("production", "2")]
    # staging undeclared: the registry's staging versions; in aliases mode, the staging alias.
    assert found(proposing("production", production=[1]), live) == [("production", "3"), ("production", "2")]
    by_alias = dataclasses.replace(proposing("production", production=[1]), lifecycle=Lifecycle(Mode.ALIASES))
    assert found(by_alias, have({1: N, 2: N, 3: N}, aliases={"production": 1, "staging": 2})) == [
        ("production", "2")]
    assert found(proposing(production=[1], staging=[2]), live) == []  # the policy proposes nothing


def test_versions_serving_now_bound_the_candidates_though_the_file_does_not_name_them() -> None:
    # v4 serves in Production, undeclared: proposing it for staging would demote it, and v3 would go backwards.
    live = have({2: A, 3: S, 4: P})
    assert found(proposing("staging", "production", staging=[3]), live) == []
    assert found(proposing("staging", "production", staging=[3]), have({2: A, 3: S, 4: P, 5: N})) == [
        ("staging", "5")]
    # both mode: a version behind the production alias counts as in production.
    both = dataclasses.replace(proposing("production", staging=[3]), lifecycle=Lifecycle(Mode.BOTH))
    assert found(both, have({3: S, 4: N}, aliases={"production": 4, "staging": 3})) == []
    assert found(both, have({2: N, 3: S}, aliases={"production": 2, "staging": 3})) == [("production", "3")]


def test_branches_are_stable_and_plain_whatever_the_model_is_called() -> None:
    assert propose.branch("fraud-detector", "staging") == "stagectl/promote/fraud-detector/staging"
    assert propose.branch("cat.schema.model", "production") == "stagectl/promote/cat.schema.model/production"
    odd = ["a b", "a\\b", 'q"uote', "emoji 🚀", "-lead", "x..y", "x.lock", "$(rm -rf)", "a/b", "🚀", "x" * 300]
    odd.append(propose.branch("a b", "staging").split("/")[2])  # a plain name that looks like a hashed one
    names = {propose.branch(n, "staging") for n in odd}
    assert len(names) == len(odd)  # no two models share a branch
    for name in names:
        part = name.split("/")[2]
        assert part[0].isalnum() and all(ch.isalnum() or ch in "_.-" for ch in part), name
        assert subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True).returncode == 0
    assert propose.branch("emoji 🚀", "staging") == propose.branch("emoji 🚀", "staging")


def test_the_propose_key_takes_staging_and_production_and_models_inherit_it(tmp_path: Path) -> None:
    text = ("apiVersion: stagectl/v1\ndefaults:\n  policy:\n    propose: [staging]\nmodels:\n  a: {production: 1}\n"
            "  b:\n    production: 1\n    policy: {propose: []}\n")
    state = desired.parse(text, "stages.yaml")
    assert [(m.name, m.policy.propose) for m in state.models] == [("a", frozenset({"staging"})), ("b", frozenset())]
    with pytest.raises(ConfigError) as bad:
        desired.parse(text.replace("[staging]", "[staging, prod]"), "stages.yaml")
    assert "stages.yaml:4" in str(bad.value) and "propose" in str(bad.value)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = make_repo(tmp_path / "repo")
    commit_file(path, "apiVersion: stagectl/v1\nmodels: {}\n", "first")
    (path / "notes.txt").write_text("a person's work in progress\n")
    git(path, "add", "notes.txt")  # staged, not committed: the proposal must leave the index alone
    return path


def test_a_proposal_is_one_commit_on_head_and_the_checkout_is_untouched(repo: Path) -> None:
    checkout = Checkout(repo / "stages.yaml")
    head = git(repo, "rev-parse", "HEAD")
    status = git(repo, "status", "--porcelain")
    commit = checkout.propose_on_branch("stagectl/promote/m/staging", "new text\n", "Promote m\n\nbody")
    assert git(repo, "rev-parse", "stagectl/promote/m/staging") == commit.sha
    assert git(repo, "rev-parse", f"{commit.sha}~1") == head
    assert git(repo, "show", f"{commit.sha}:stages.yaml") == "new text"
    assert git(repo, "diff", "--name-only", head, commit.sha) == "stages.yaml"  # notes.txt stays out of it
    assert git(repo, "log", "-1", "--format=%B", commit.sha) == "Promote m\n\nbody"
    assert git(repo, "branch", "--show-current") == "main" and git(repo, "status", "--porcelain") == status
    assert checkout.proposal_text("stagectl/promote/m/staging") == "new text\n"
    # A newer proposal replaces it, again on HEAD.
    newer = checkout.propose_on_branch("stagectl/promote/m/staging", "newer\n", "Promote m again")
    assert git(repo, "rev-parse", f"{newer.sha}~1") == head and checkout.proposal_text(
        "stagectl/promote/m/staging") == "newer\n"


def test_a_proposal_never_overwrites_a_branch_another_run_moved_meanwhile(repo: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = Checkout(repo / "stages.yaml")
    checkout.propose_on_branch("stagectl/promote/m/staging", "one\n", "first")
    real = checkout._repo.git  # type: ignore[attr-defined]

    class Racing:
        """git as it is, except that another run moves the branch while this one builds its commit."""

        def __getattr__(self, name: str) -> object:
            if name != "commit_tree":
                return getattr(real, name)

            def commit_tree(*args: str, **kwargs: object) -> str:
                sha = real.commit_tree(*args, **kwargs)
                git(repo, "branch", "-f", "stagectl/promote/m/staging", "HEAD")
                return str(sha)
            return commit_tree

    monkeypatch.setattr(checkout._repo, "git", Racing())  # type: ignore[attr-defined]
    with pytest.raises(GitError, match="could not commit the proposal on branch 'stagectl/promote/m/staging'"):
        checkout.propose_on_branch("stagectl/promote/m/staging", "two\n", "second")
    assert git(repo, "rev-parse", "stagectl/promote/m/staging") == git(repo, "rev-parse", "HEAD")


def test_the_last_fetched_proposal_counts_when_there_is_no_local_branch(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    checkout = Checkout(repo / "stages.yaml")
    checkout.propose_on_branch("stagectl/promote/m/staging", "proposed\n", "Promote m")
    git(tmp_path, "clone", "-q", str(repo), str(clone))  # as CI checks out: remote-tracking branches only
    assert Checkout(clone / "stages.yaml").proposal_text("stagectl/promote/m/staging") == "proposed\n"
    assert Checkout(clone / "stages.yaml").proposal_text("stagectl/promote/m/production") is None


def test_a_proposal_is_never_made_on_the_branch_checked_out(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "stagectl/promote/m/staging")
    with pytest.raises(GitError, match="is checked out"):
        Checkout(repo / "stages.yaml").propose_on_branch("stagectl/promote/m/staging", "x\n", "x")


def test_a_proposal_is_pushed_until_the_remote_has_it_and_never_over_a_newer_one(repo: Path, tmp_path: Path) -> None:
    git(repo, "commit", "-q", "-m", "notes")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    checkout = Checkout(work / "stages.yaml")
    branch = "stagectl/promote/m/staging"
    checkout.propose_on_branch(branch, "one\n", "first")
    assert checkout.push("origin", branch) is True
    assert checkout.push("origin", branch) is False  # the remote has it: nothing to send
    # Another writer (the scheduled workflow) replaces the proposal on the remote after this clone fetched.
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    Checkout(other / "stages.yaml").propose_on_branch(branch, "newer\n", "theirs")
    git(other, "push", "-q", "--force", "origin", f"{branch}:{branch}")
    checkout.propose_on_branch(branch, "two\n", "second")
    with pytest.raises(GitError, match=f"could not push '{branch}' to 'origin'"):
        checkout.push("origin", branch)
    assert git(origin, "show", f"{branch}:stages.yaml") == "newer"


def test_propose_refuses_uncommitted_changes_before_asking_the_registry(repo: Path, capsys: pytest.CaptureFixture[str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from controller import cli

    text = "apiVersion: stagectl/v1\nmodels:\n  m:\n    production: 1\n    policy: {propose: [staging]}\n"
    commit_file(repo, text, "propose for m")
    (repo / "stages.yaml").write_text(text.replace("production: 1", "production: 2"))
    monkeypatch.chdir(repo)
    assert cli.main(["propose", "--tracking-uri", "http://127.0.0.1:9"]) == 1  # nothing listens there
    said = capsys.readouterr().err
    assert "uncommitted changes: proposals start from the last commit" in said and "--dry-run" in said
    assert git(repo, "branch", "--list", "stagectl/*") == ""
