"""stagectl propose against a real server and real git repositories: runs with metrics, versions registered from
them, proposals written as branches, held back by their gates, and replaced by newer candidates."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests import seed
from tests.actions import fake_pr_gh, run_workflow_step
from tests.conftest import ROOT, Server
from tests.e2e.helpers import skewed, stagectl
from tests.faultproxy import FaultProxy, writes
from tests.gitrepo import commit_file, git, make_repo

pytestmark = pytest.mark.e2e

POLICY = ("    policy:\n      metrics:\n        val_auc: {threshold: 0.92, min_absolute_change: 0.005}\n"
          "      soak: 24h\n      propose: [staging, production]\n")


def _register(server: Server, name: str, aucs: list[float], create: bool = True) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=server.uri, registry_uri=server.uri)
    if create:
        client.create_registered_model(name)
    experiment = client.get_experiment_by_name(f"{name}-training") or None
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(f"{name}-training")
    for auc in aucs:
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "val_auc", auc)
        client.set_terminated(run.info.run_id)
        client.create_model_version(name, source=seed.SOURCE, run_id=run.info.run_id)


def _key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _file(name: str, production: int, staging: int, policy: str = POLICY) -> str:
    return (f"apiVersion: stagectl/v1\nmodels:\n  {_key(name)}:  # the serving model\n"
            f"    production: {production}\n    staging: {staging}\n    archived: []\n{policy}")


def _three_versions(server: Server, name: str, tmp_path: Path) -> Path:
    """A repository whose file serves v1 (val_auc 0.93) and stages v2 (0.95) under POLICY, applied with v2 entering
    staging two days ago by the applying runner's clock; then v3 (0.91), newer than anything the file names."""
    _register(server, name, [0.93, 0.95])
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, _file(name, 1, 2, policy=""), "Serve v1, stage v2")  # before the gates
    staged = stagectl("apply", "--tracking-uri", server.uri, cwd=repo, env=skewed("-2d"))
    assert staged.returncode == 0, staged.stdout + staged.stderr
    commit_file(repo, _file(name, 1, 2), "Gate promotions, and propose them")
    _register(server, name, [0.91], create=False)
    return repo


def _branch_file(repo: Path, branch: str) -> str:
    return git(repo, "show", f"{branch}:stages.yaml") + "\n"


def test_new_versions_and_ready_staging_versions_become_branches_and_newer_candidates_replace_them(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    name = f"{unique} fr\"aud\\ 🚀's"  # a branch's plain spelling of it is checked too
    repo = _three_versions(mlflow_server, name, tmp_path)
    uri = ["--tracking-uri", mlflow_server.uri]
    main = git(repo, "rev-parse", "HEAD")
    before = (repo / "stages.yaml").read_text()

    with FaultProxy(mlflow_server.uri) as proxy:
        first = stagectl("propose", "--tracking-uri", proxy.uri, "--format", "json", cwd=repo)
    assert first.returncode == 0, first.stdout + first.stderr
    assert writes(proxy) == []  # git only: not one write to the registry
    report = json.loads(first.stdout)
    jsonschema.validate(report, json.loads(stagectl("schema", "propose", cwd=repo).stdout))
    proposals = {p["stage"]: p for p in report["proposals"]}
    assert {s: (p["version"], p["status"]) for s, p in proposals.items()} == {
        "staging": ("3", "created"), "production": ("2", "created")}
    staging_branch, production_branch = proposals["staging"]["branch"], proposals["production"]["branch"]
    # A name no shell or URL could take as it is: plain characters and a hash of the real name.
    assert production_branch.startswith(f"stagectl/promote/{unique}-fr-aud-s-") and \
        production_branch.endswith("/production")

    # The checkout is where it was: same branch, same commit, same file, nothing staged.
    assert git(repo, "branch", "--show-current") == "main" and git(repo, "rev-parse", "HEAD") == main
    assert (repo / "stages.yaml").read_text() == before and git(repo, "status", "--porcelain") == ""
    # Each branch is one commit on main that changes only the spans the promotion needs.
    for branch in (staging_branch, production_branch):
        assert git(repo, "rev-parse", f"{branch}~1") == main
        assert git(repo, "diff", "--name-only", "main", branch) == "stages.yaml"
    assert _branch_file(repo, staging_branch) == before.replace("staging: 2", "staging: 3") \
        .replace("archived: []", "archived: [2]")
    assert _branch_file(repo, production_branch) == before.replace("production: 1", "production: 2") \
        .replace("staging: 2", "staging: []").replace("archived: []", "archived: [1]")

    # The pull request's body: the plan, every metric with its numbers, soak, and lineage.
    body = git(repo, "log", "-1", "--format=%B", production_branch)
    assert body.startswith(f"Promote {name} version 2 to production\n\n")
    assert "| val_auc | 0.95 | 0.93 | +0.02 | threshold 0.92, min_absolute_change 0.005 | pass |" in body
    assert "(recorded by stagectl): 2d" in body
    run = registry.get_model_version(name, "2").run_id
    assert f"| Run | `{run}` |" in body and f"| Source | `{seed.SOURCE}` |" in body
    assert proposals["production"]["body"] == body.split("\n\n", 1)[1].rstrip("\n") + "\n"

    # Again, nothing new: the branches already propose exactly this.
    again = stagectl("propose", *uri, "--format", "json", cwd=repo)
    assert [(p["stage"], p["status"]) for p in json.loads(again.stdout)["proposals"]] == [
        ("staging", "unchanged"), ("production", "unchanged")] or \
        sorted((p["stage"], p["status"]) for p in json.loads(again.stdout)["proposals"]) == [
        ("production", "unchanged"), ("staging", "unchanged")]
    tip = git(repo, "rev-parse", staging_branch)

    # A newer candidate replaces the proposal on the same branch, again one commit on main.
    _register(mlflow_server, name, [0.96], create=False)  # v4
    newer = stagectl("propose", name, *uri, cwd=repo)
    assert newer.returncode == 0, newer.stdout + newer.stderr
    assert f"version 4 to staging: branch {staging_branch} (updated at " in newer.stdout
    assert git(repo, "rev-parse", staging_branch) != tip and git(repo, "rev-parse", f"{staging_branch}~1") == main
    assert "staging: 4" in _branch_file(repo, staging_branch)
    assert git(repo, "branch", "--show-current") == "main"


def test_each_gate_holds_a_production_proposal_back_and_nothing_qualifying_makes_no_branch(
        tmp_path: Path, second_server: Server, unique: str) -> None:
    """One backend: the gates read the same on both (tests/e2e/test_metric_gates.py runs them on each)."""
    mlflow_server, registry = second_server, seed.client(second_server.uri)
    name = f"{unique}-gated"
    _register(mlflow_server, name, [0.93, 0.90])  # v2 fails the metric gate
    repo = make_repo(tmp_path / "repo")
    uri = ["--tracking-uri", mlflow_server.uri]
    policy = POLICY.replace("[staging, production]", "[production]")
    commit_file(repo, _file(name, 1, 2, policy=""), "Serve v1, stage v2")
    assert stagectl("apply", *uri, cwd=repo, env=skewed("-2d")).returncode == 0
    commit_file(repo, _file(name, 1, 2, policy), "Gate promotions, and propose them")

    held = stagectl("propose", *uri, cwd=repo)
    assert held.returncode == 0, held.stdout + held.stderr
    assert f"{name}: version 2 to production: held back: metrics: val_auc 0.9; >= 0.92 FAILED" in held.stdout
    assert git(repo, "branch", "--list", "stagectl/*") == ""

    # Good metrics, but only just staged: the soak gate holds it back.
    _register(mlflow_server, name, [0.97], create=False)  # v3
    commit_file(repo, _file(name, 1, 3, policy), "Stage v3")
    assert stagectl("apply", *uri, cwd=repo).returncode == 0
    soaking = stagectl("propose", *uri, "--format", "json", cwd=repo)
    jsonschema.validate(json.loads(soaking.stdout), json.loads(stagectl("schema", "propose", cwd=repo).stdout))
    (back,) = json.loads(soaking.stdout)["held_back"]
    assert back["version"] == "3" and any(r.startswith("soak: in staging since") and "ready in 23h" in r
                                          for r in back["reasons"]), back["reasons"]
    assert json.loads(soaking.stdout)["proposals"] == [] and git(repo, "branch", "--list", "stagectl/*") == ""

    # A hand-written promotion that breaks the metric gate fails plan (the same gates as propose).
    commit_file(repo, _file(name, 2, 3, policy), "Serve v2 by hand")
    refused = stagectl("plan", *uri, cwd=repo)
    assert refused.returncode == 1 and "VIOLATED  metrics" in refused.stdout + refused.stderr

    # Nothing to propose at all: exit 0, no branch; --dry-run never writes one either.
    commit_file(repo, _file(name, 1, 3, policy.replace("[production]", "[staging]")), "Propose staging only")
    quiet = stagectl("propose", *uri, cwd=repo)
    assert quiet.returncode == 0 and "Nothing qualifies" in quiet.stdout
    _register(mlflow_server, name, [0.97], create=False)  # v4
    dry = stagectl("propose", *uri, "--dry-run", cwd=repo)
    assert dry.returncode == 0 and "(would be created)" in dry.stdout
    assert git(repo, "branch", "--list", "stagectl/*") == ""

    # Metrics and soak pass, but v3 lacks the tag the policy requires: held back; once tagged, proposed.
    tagged = policy.replace("soak: 24h", "soak: 1s").replace(
        "      propose:", "      require_tags: {validation: passed}\n      propose:")
    commit_file(repo, _file(name, 1, 3, tagged), "Require validation")
    untagged = json.loads(stagectl("propose", *uri, "--format", "json", cwd=repo).stdout)
    assert [(p["version"], p["reasons"]) for p in untagged["held_back"]] == [
        ("3", ["require_tags: missing validation=passed"])] and untagged["proposals"] == []
    registry.set_model_version_tag(name, "3", "validation", "passed")
    passed = json.loads(stagectl("propose", *uri, "--format", "json", cwd=repo).stdout)
    assert [(p["version"], p["stage"], p["status"]) for p in passed["proposals"]] == [("3", "production", "created")]


def test_the_propose_workflow_pushes_each_proposal_and_keeps_one_pull_request_per_branch(
        tmp_path: Path, second_server: Server, unique: str) -> None:
    """The workflow's own script, run as a runner runs it, after stagectl propose in a fresh clone each time
    (as CI checks out): pushes go to a local origin (git's insteadOf stands in for GitHub), gh keeps the
    pull requests. One backend: what is under test is git and the script."""
    mlflow_server = second_server
    name = f"{unique}-workflow"
    _register(mlflow_server, name, [0.93])
    origin = tmp_path / "origin.git"
    seed_repo = make_repo(tmp_path / "seed")
    policy = "    policy: {propose: [staging]}\n"
    commit_file(seed_repo, f"apiVersion: stagectl/v1\nmodels:\n  {name}:\n    production: 1\n{policy}", "Serve v1")
    git(tmp_path, "clone", "-q", "--bare", str(seed_repo), str(origin))
    gh = fake_pr_gh(tmp_path / "gh")
    pulls = tmp_path / "gh" / "pulls.json"
    token = "ghs_workflow_token_5521"
    context = {"github": {"token": token, "repository": "acme/ml-deploy", "server_url": "https://github.com",
                          "ref_name": "main"}}
    runs = iter(range(100))

    def scheduled_run() -> dict[str, object]:
        work = tmp_path / f"run-{next(runs)}" / "work"
        git(tmp_path, "clone", "-q", str(origin), str(work))  # fetch-depth 0: every branch, as origin/...
        git(work, "config", "user.name", "stagectl")
        git(work, "config", "user.email", "stagectl@users.noreply.github.com")
        git(work, "config", f"url.{origin}.insteadOf", "https://github.com/acme/ml-deploy.git")
        found = stagectl("propose", "--tracking-uri", mlflow_server.uri, "--json-report", str(work.parent / "r.json"),
                         cwd=work)
        assert found.returncode == 0, found.stdout + found.stderr
        step = run_workflow_step(ROOT / ".github/workflows/stagectl-propose.yml", "propose",
                                 "Push the proposals and open their pull requests", cwd=work,
                                 env={"RUNNER_TEMP": str(work.parent)},
                                 context={**context, "steps": {"propose": {"outputs": {
                                     "report": str(work.parent / "r.json")}}}}, path=[gh])
        assert step.returncode == 0, step.stdout + step.stderr
        return json.loads((work.parent / "r.json").read_text())

    def branch_file() -> str:
        return git(origin, "show", f"{propose_branch}:stages.yaml")

    _register(mlflow_server, name, [0.94], create=False)  # v2: proposed for staging
    first = scheduled_run()
    (proposal,) = first["proposals"]
    propose_branch = proposal["branch"]
    assert "staging: 2" in branch_file()
    (pull,) = json.loads(pulls.read_text())
    assert (pull["headRefName"], pull["baseRefName"], pull["title"]) == (
        propose_branch, "main", f"Promote {name} version 2 to staging")
    assert pull["body"].rstrip("\n") == proposal["body"].rstrip("\n")

    # Nothing new: the branch on origin already proposes it; nothing is pushed, no pull request is added.
    tip = git(origin, "rev-parse", propose_branch)
    assert scheduled_run()["proposals"][0]["status"] == "unchanged"
    assert git(origin, "rev-parse", propose_branch) == tip and len(json.loads(pulls.read_text())) == 1
    # A branch already on origin without a pull request (webhook serve pushed it): one is opened for it.
    pulls.write_text("[]")
    assert scheduled_run()["proposals"][0]["status"] == "unchanged"
    assert [p["title"] for p in json.loads(pulls.read_text())] == [f"Promote {name} version 2 to staging"]
    assert git(origin, "rev-parse", propose_branch) == tip

    # A newer version: the same branch is force-pushed and the open pull request is updated, not duplicated.
    _register(mlflow_server, name, [0.95], create=False)  # v3
    assert scheduled_run()["proposals"][0]["status"] == "updated"
    assert "staging: 3" in branch_file()
    (pull,) = json.loads(pulls.read_text())
    assert pull["title"] == f"Promote {name} version 3 to staging" and "version 3" in pull["body"]

    # A person declines it (closes it unmerged) and the branch goes: the same proposal is not opened again...
    pull.update(state="CLOSED")
    pulls.write_text(json.dumps([pull]))
    git(origin, "branch", "-D", propose_branch)
    assert scheduled_run()["proposals"][0]["status"] == "created"
    assert len(json.loads(pulls.read_text())) == 1
    # ...but a newer version is.
    _register(mlflow_server, name, [0.96], create=False)  # v4
    scheduled_run()
    assert [p["title"] for p in json.loads(pulls.read_text())] == [
        f"Promote {name} version 3 to staging", f"Promote {name} version 4 to staging"]


def test_proposals_on_an_older_mlflow_server(tmp_path: Path, own_old_server: Server) -> None:
    """MLflow 2.9 and 2.22: the runs, their metrics and the versions' lineage are read the same way, and
    proposals come out as on a current server, with not one write to the registry. Webhooks are refused with
    the reason: these servers have none."""
    name = "fraud 'q' 🚀"
    repo = _three_versions(own_old_server, name, tmp_path)
    uri = ["--tracking-uri", own_old_server.uri]

    with FaultProxy(own_old_server.uri) as proxy:
        proposed = stagectl("propose", "--tracking-uri", proxy.uri, "--format", "json", cwd=repo)
    assert proposed.returncode == 0, proposed.stdout + proposed.stderr
    assert writes(proxy) == []
    proposals = {p["stage"]: p for p in json.loads(proposed.stdout)["proposals"]}
    assert {s: (p["version"], p["status"]) for s, p in proposals.items()} == {
        "staging": ("3", "created"), "production": ("2", "created")}
    body = git(repo, "log", "-1", "--format=%B", proposals["production"]["branch"])
    assert "| val_auc | 0.95 | 0.93 | +0.02 | threshold 0.92, min_absolute_change 0.005 | pass |" in body
    assert "(recorded by stagectl): 2d" in body
    run = seed.client(own_old_server.uri).get_model_version(name, "2").run_id
    assert f"| Run | `{run}` |" in body

    # Webhooks came with MLflow 3.3: registering one says so, and what to do instead.
    hook = stagectl("webhook", "register", "--url", "http://127.0.0.1:9/hook", "--secret-env", "HOOK_SECRET",
                    *uri, cwd=repo, env={"HOOK_SECRET": "hook-secret-8841"})
    assert hook.returncode == 1
    assert "has no webhooks: MLflow added them in 3.3. Upgrade the server, or keep proposing on a schedule" \
        in hook.stderr, hook.stderr
    assert "hook-secret-8841" not in hook.stdout + hook.stderr
