"""Against a real `mlflow server --app-name basic-auth`: READ may plan, only EDIT may apply, and a
refused apply changes nothing of the model: its one write to it is refused by the server. A model denied to
the user is named as such, and the others go on."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import seed
from tests.conftest import AUTH_USERS, Server
from tests.e2e.helpers import stagectl, write
from tests.faultproxy import FaultProxy, write_numbers, writes, writes_to
from tests.gitrepo import commit_file, git, make_repo

pytestmark = pytest.mark.e2e

ADMIN, READER, EDITOR = AUTH_USERS["admin"], AUTH_USERS["reader"], AUTH_USERS["editor"]


def _as(user: tuple[str, str]) -> dict[str, str]:
    return {"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]}


@contextmanager
def _admin() -> Iterator[None]:
    """This process talks to the server as its admin meanwhile (MLflow's client reads the environment)."""
    saved = dict(os.environ)
    os.environ.update(_as(ADMIN))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _models(server: Server, stages: list[str], grants: dict[str, str]) -> None:
    """Models named as `grants`' keys, one version per entry of `stages`; the editor gets each one's permission."""
    with _admin():
        from mlflow.server import get_app_client

        admin = get_app_client("basic-auth", tracking_uri=server.uri)
        for name, permission in grants.items():
            seed.make_model(seed.client(server.uri), name, stages)
            admin.grant_user_permission(EDITOR[0], "registered_model", name, permission)


@pytest.fixture(scope="module")
def model(auth_server: Server) -> str:
    _models(auth_server, ["Production", "Staging"], {"guarded": "EDIT"})
    return "guarded"


def _snapshot(uri: str) -> object:
    with _admin():
        return seed.snapshot(seed.client(uri), ["guarded"], times=True)


def test_read_may_plan_but_its_apply_is_refused_at_its_first_write_to_the_model(
        tmp_path: Path, auth_server: Server, model: str) -> None:
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n")
    uri = ["--tracking-uri", auth_server.uri]
    planned = stagectl("plan", *uri, cwd=tmp_path, env=_as(READER))
    assert planned.returncode == 0, planned.stderr
    assert "promote version 2: Staging → Production" in planned.stdout
    before = _snapshot(auth_server.uri)
    answered: dict[int, int] = {}  # request number → the status the server answered
    with FaultProxy(auth_server.uri, after=lambda n, m, p, status: answered.update({n: status})) as proxy:
        refused = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path, env=_as(READER))
    assert refused.returncode == 1
    # The refusal is the server's 403, named under the model; not a guess made by stagectl beforehand.
    assert f"{model}: promote version 2: Staging → Production ... failed: registry {proxy.uri} answered " \
           "PERMISSION_DENIED: permission denied (PERMISSION_DENIED)" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and READER[1] not in refused.stdout + refused.stderr
    tried = write_numbers(proxy, model)
    # Its ownership tag is the model's first write; refused, nothing else of the model is attempted.
    assert [proxy.seen[n] for n in tried] == [("POST", "/api/2.0/mlflow/registered-models/set-tag")]
    assert [answered[n] for n in tried] == [403]
    # The lease is the only other write: any user may create a registered model, so it is taken and given back.
    assert writes_to(proxy, "stagectl-lease") == [("POST", "/api/2.0/mlflow/registered-models/create"),
                                                  ("DELETE", "/api/2.0/mlflow/registered-models/delete")]
    assert len(writes(proxy)) == 3
    assert _snapshot(auth_server.uri) == before


def test_edit_may_apply(tmp_path: Path, auth_server: Server, model: str) -> None:
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n")
    applied = stagectl("apply", "--allow-dirty", "--tracking-uri", auth_server.uri, cwd=tmp_path, env=_as(EDITOR))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = _snapshot(auth_server.uri)
    assert after["guarded"]["stages"] == {"1": "Archived", "2": "Production"}  # type: ignore[index]


def test_wrong_password_is_a_clear_error(tmp_path: Path, auth_server: Server, model: str) -> None:
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n")
    result = stagectl("plan", "--tracking-uri", auth_server.uri, cwd=tmp_path, env=_as(("reader", "wrong-pw-5")))
    assert result.returncode == 1
    assert "permission denied" in result.stderr and "wrong-pw-5" not in result.stderr


@pytest.mark.parametrize("editable_first", [True, False], ids=["edit-sorts-first", "read-sorts-first"])
def test_permissions_are_per_model_whatever_the_names(
        editable_first: bool, tmp_path: Path, auth_server: Server, unique: str) -> None:
    """EDIT on one model, READ on another: the one is applied, the other refused under its own name, in
    either alphabetical order."""
    editable, readonly = (f"{unique}-aa-edit", f"{unique}-zz-read") if editable_first else \
        (f"{unique}-zz-edit", f"{unique}-aa-read")
    _models(auth_server, ["Production", "Staging"], {editable: "EDIT", readonly: "READ"})
    body = "".join(f"  {name}:\n    production: 2\n" for name in sorted((editable, readonly)))
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n{body}")
    with FaultProxy(auth_server.uri) as proxy:
        result = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path, env=_as(EDITOR))
    assert result.returncode == 1
    assert f"{readonly}: promote version 2: Staging → Production ... failed: registry {proxy.uri} answered " \
           "PERMISSION_DENIED" in result.stderr, result.stderr
    assert f"{editable}: promote version 2: Staging → Production ... applied" in result.stderr, result.stderr
    assert [p for _, p in writes_to(proxy, readonly)] == ["/api/2.0/mlflow/registered-models/set-tag"]
    with _admin():
        stages = seed.snapshot(seed.client(auth_server.uri), [editable, readonly])
    assert stages[editable]["stages"] == {"1": "Archived", "2": "Production"}  # type: ignore[index]
    assert stages[readonly]["stages"] == {"1": "Production", "2": "Staging"}  # type: ignore[index]


def test_a_model_kept_from_these_credentials_is_named_as_such_and_the_others_are_proposed(
        tmp_path: Path, auth_server: Server, unique: str) -> None:
    """A server that denies one model to a user leaves it out of every search: plan, export and propose must say
    that the credentials may not read it (not that it does not exist, as for a model that is truly missing), and
    go on with the others."""
    readable, denied, ghost = f"{unique}-open", f"{unique}-denied", f"{unique}-ghost"
    _models(auth_server, ["Production", "None"], {readable: "READ", denied: "DENY"})
    repo = make_repo(tmp_path / "repo")
    body = "".join(f"  {name}:\n    production: 1\n    policy: {{propose: [staging]}}\n"
                   for name in (readable, denied, ghost))
    commit_file(repo, f"apiVersion: stagectl/v1\nmodels:\n{body}", "Serve v1")
    kept = "may not be read with these credentials (the registry answered PERMISSION_DENIED for it): give them " \
           "read access to the model (READ, in MLflow's basic auth), or take it out of this file"

    planned = stagectl("plan", "--tracking-uri", auth_server.uri, cwd=repo, env=_as(EDITOR))
    assert planned.returncode == 1, planned.stdout + planned.stderr
    assert f"{denied}: held, nothing planned for it: {kept} (stages.yaml:6:3)" in planned.stdout, planned.stdout
    assert f"{ghost}: held, nothing planned for it: does not exist in the registry" in planned.stdout
    exported = stagectl("export", denied, ghost, "--tracking-uri", auth_server.uri, cwd=repo, env=_as(EDITOR))
    assert exported.returncode == 1 and exported.stdout == ""
    assert f"model '{denied}' {kept}" in exported.stderr and f"model '{ghost}' does not exist" in exported.stderr

    with FaultProxy(auth_server.uri) as proxy:
        proposed = stagectl("propose", "--tracking-uri", proxy.uri, "--format", "json", cwd=repo, env=_as(EDITOR))
    assert proposed.returncode == 1, proposed.stdout + proposed.stderr
    data = json.loads(proposed.stdout)
    assert [(p["model"], p["version"], p["stage"]) for p in data["proposals"]] == [(readable, "2", "staging")]
    assert {m["model"]: m["reason"] for m in data["unreadable"]} == {
        denied: f"it {kept}", ghost: "it does not exist in the registry"}
    assert git(repo, "branch", "--list", "stagectl/promote/*").split() == [f"stagectl/promote/{readable}/staging"]
    assert writes(proxy) == []
    assert EDITOR[1] not in proposed.stdout + proposed.stderr


def test_permissions_are_per_model_in_aliases_mode_too(tmp_path: Path, auth_server: Server, unique: str) -> None:
    """Aliases mode writes other things first (its lifecycle tag, the alias, the archive tag): a model the user
    may only read is still refused at its first write, with nothing of it written, and the other goes on."""
    editable, readonly = f"{unique}-al-edit", f"{unique}-al-read"
    _models(auth_server, ["None", "None"], {editable: "EDIT", readonly: "READ"})
    body = "".join(f"  {name}:\n    production: 2\n" for name in (editable, readonly))
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nlifecycle: aliases\nmodels:\n{body}")
    with FaultProxy(auth_server.uri) as proxy:
        result = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path, env=_as(EDITOR))
    assert result.returncode == 1
    assert f"{readonly}: " in result.stderr and "answered PERMISSION_DENIED" in result.stderr, result.stderr
    assert [p for _, p in writes_to(proxy, readonly)] == ["/api/2.0/mlflow/registered-models/set-tag"]
    with _admin():
        client = seed.client(auth_server.uri)
        assert client.get_registered_model(editable).aliases == {"production": "2"}
        refused = client.get_registered_model(readonly)
    assert refused.aliases == {} and not any(k.startswith("stagectl.") for k in refused.tags)
