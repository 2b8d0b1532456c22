"""Canary secrets never appear in any output, report, summary or error, in any encoding."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from tests import seed
from tests.conftest import AUTH_USERS, Server
from tests.e2e.helpers import stagectl
from tests.faultproxy import FaultProxy
from tests.gitrepo import commit_file, make_repo

pytestmark = pytest.mark.e2e

TOKEN, PASSWORD, URI_PASSWORD = "canary-token-8812", "canary-pass-3307", "canary-uri-5520"
USER = "canary-user"


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(secret.encode()).decode()}


LEAKS = (_forms(TOKEN) | _forms(PASSWORD) | _forms(URI_PASSWORD) | _forms(f"{USER}:{PASSWORD}")
         | _forms(f"uri-user:{URI_PASSWORD}"))


def _with_password(uri: str) -> str:
    return uri.replace("http://", f"http://uri-user:{URI_PASSWORD}@")


def test_no_command_leaks_a_secret_on_any_path(
        tmp_path: Path, mlflow_server: Server, auth_server: Server, registry: seed.ModelRegistryClient,
        unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"], aliases={"champion": 1})
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n"
                      "    aliases: {champion: 2}\n", "Promote")
    summary = tmp_path / "summary.md"
    env = {"MLFLOW_TRACKING_TOKEN": TOKEN, "MLFLOW_TRACKING_USERNAME": USER, "MLFLOW_TRACKING_PASSWORD": PASSWORD,
           "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    commands = [["plan"], ["plan", "--format", "json"], ["plan", "--format", "markdown", "--base", "HEAD"],
                ["apply", "--lease-wait", "5"], ["export", model], ["resolve", model, "--stage", "production"],
                ["resolve", model, "--alias", "champion", "--format", "json"], ["cleanup-report"]]
    runs = []
    with FaultProxy(mlflow_server.uri, faults=lambda n, m, p: "503") as always_503, \
            FaultProxy(mlflow_server.uri, faults=lambda n, m, p: "stall", stall=3) as stalls:
        targets = {
            "success": _with_password(mlflow_server.uri),  # this server ignores credentials
            "401": _with_password(auth_server.uri),  # wrong credentials for the auth server
            "5xx": _with_password(always_503.uri),
            "timeout": _with_password(stalls.uri),
        }
        fast = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "2", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}
        for path, uri in targets.items():
            # Every command where it succeeds; where it fails, the two that reach the registry the most.
            matrix = [(c, []) for c in commands] if path == "success" else [
                (c, d) for c in (["plan"], ["apply", "--lease-wait", "5"]) for d in ([], ["--debug"])]
            for command, debug in matrix:
                result = stagectl(*debug, *command, "--tracking-uri", uri, cwd=repo, env={**env, **fast})
                runs.append((path, command, result))
        # 403: the right password (the canary belongs to a READ user), not enough permission.
        _make_reader_with_canary_password(auth_server, unique)
        guarded = make_repo(tmp_path / "guarded")
        commit_file(guarded, f"apiVersion: stagectl/v1\nmodels:\n  {unique}-guarded:\n    production: 2\n", "Promote")
        for debug in ([], ["--debug"]):
            result = stagectl(*debug, "apply", "--tracking-uri", auth_server.uri, cwd=guarded,
                              env={**env, "MLFLOW_TRACKING_USERNAME": f"{unique}-reader"})
            runs.append(("403", ["apply"], result))
    for offline in (["validate"], ["history", model], ["--help"]):
        runs.append(("offline", offline, stagectl(*offline, cwd=repo, env=env)))

    outcomes = {(path, result.returncode) for path, _, result in runs}
    assert ("success", 0) in outcomes and ("401", 1) in outcomes and ("403", 1) in outcomes
    assert ("5xx", 1) in outcomes and ("timeout", 1) in outcomes
    assert any("permission denied" in r.stderr for p, _, r in runs if p == "403")
    assert any("Traceback" in r.stderr for _, c, r in runs if r.returncode == 1)  # --debug did print
    everything = [(path, command, r.stdout + r.stderr) for path, command, r in runs]
    everything.append(("summary", ["GITHUB_STEP_SUMMARY"], summary.read_text()))
    for path, command, text in everything:
        for leak in LEAKS:
            assert leak not in text, f"{leak!r} leaked on the {path} path of {' '.join(command)}"


def _make_reader_with_canary_password(auth_server: Server, unique: str) -> None:
    """A READ user whose password is the canary, and a model it may only read (names unique per run)."""
    admin = AUTH_USERS["admin"]
    saved = dict(os.environ)
    os.environ.update({"MLFLOW_TRACKING_USERNAME": admin[0], "MLFLOW_TRACKING_PASSWORD": admin[1]})
    try:
        from mlflow.server import get_app_client

        client = get_app_client("basic-auth", tracking_uri=auth_server.uri)
        seed.make_model(seed.client(auth_server.uri), f"{unique}-guarded", ["Production", "Staging"])
        client.create_user(f"{unique}-reader", PASSWORD)
    finally:
        os.environ.clear()
        os.environ.update(saved)


SIGNATURE = "c2lnLWNhbmFyeS03NzQx"  # the signature of a signed (SAS-style) URL
SAS_LEAKS = _forms(SIGNATURE) | _forms("2031-01-01T00:00:00Z")  # a signed URL's other values are masked too

# Loaded by the stagectl subprocess (through PYTHONPATH): a transition fails with an exception stagectl does not
# expect, whose message quotes the request as some HTTP libraries do: its Authorization header (built from the
# environment, as MLflow builds it) and a signed URL.
LEAKY_CLIENT = f'''
import base64
import os

from mlflow.tracking._model_registry.client import ModelRegistryClient


def transition(self, name, version, stage, archive_existing_versions=False):
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if password:
        basic = f"{{os.environ['MLFLOW_TRACKING_USERNAME']}}:{{password}}".encode()
        header = "Basic " + base64.b64encode(basic).decode()
    else:
        header = "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]
    raise RuntimeError(f"refused POST transition-stage headers={{ {{'Authorization': header}} }} source="
                       "https://acct.blob.core.windows.net/models/m.pkl?sv=2024-11-04&se=2031-01-01T00:00:00Z"
                       "&sig={SIGNATURE}")


ModelRegistryClient.transition_model_version_stage = transition
'''


def test_an_unexpected_error_quoting_the_request_is_masked_in_the_job_summary_too(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"])
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n", "Promote")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(LEAKY_CLIENT)
    summary = tmp_path / "summary.md"
    pythonpath = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH")) if p)
    runs = []
    for credentials in ({"MLFLOW_TRACKING_USERNAME": USER, "MLFLOW_TRACKING_PASSWORD": PASSWORD},
                        {"MLFLOW_TRACKING_TOKEN": TOKEN}):
        for fmt in ("text", "json"):
            env = {**credentials, "PYTHONPATH": pythonpath, "GITHUB_ACTIONS": "true",
                   "GITHUB_STEP_SUMMARY": str(summary)}
            runs.append(stagectl("apply", "--format", fmt, "--tracking-uri", mlflow_server.uri, cwd=repo, env=env))
    written = summary.read_text()
    assert all(r.returncode == 1 for r in runs), [r.stderr for r in runs]
    assert "unexpected RuntimeError: refused POST" in written  # the failure itself is reported
    assert "'Authorization': 'Basic ***'" in written and "'Authorization': 'Bearer ***'" in written
    for text in [written] + [r.stdout + r.stderr for r in runs]:
        for leak in LEAKS | SAS_LEAKS:
            assert leak not in text, f"{leak!r} leaked"


def test_a_signed_registry_url_is_masked_in_every_output(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"])
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n", "Promote")
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    signed = f"{mlflow_server.uri}/?sv=2024-11-04&se=2031-01-01T00:00:00Z&sr=c&sp=r&sig={SIGNATURE}"
    runs = [stagectl(*debug, *command, "--tracking-uri", signed, cwd=repo, env=env)
            for command in (["plan"], ["plan", "--format", "json"], ["apply"], ["export", model])
            for debug in ([], ["--debug"])]
    assert all(r.returncode == 1 for r in runs)  # a signed URL is not an MLflow server's address
    assert any("sig=***" in r.stderr for r in runs)
    for text in [r.stdout + r.stderr for r in runs] + [summary.read_text() if summary.exists() else ""]:
        for leak in SAS_LEAKS:
            assert leak not in text, f"{leak!r} leaked"
