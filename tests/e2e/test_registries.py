"""Registries as teams run them: a registry apart from tracking, every name MLflow accepts, one model's state
that must not hold the others, and older MLflow servers (with --slow)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import stagectl, write
from tests.faultproxy import FaultProxy, writes, writes_to

pytestmark = pytest.mark.e2e

SEARCHES = {"/api/2.0/mlflow/registered-models/search", "/api/2.0/mlflow/model-versions/search"}


def _promote_file(tmp_path: Path, *names: str) -> Path:
    body = "".join(f"  {json.dumps(name, ensure_ascii=False)}:\n    production: 2\n    aliases: {{champion: 2}}\n"
                   for name in names)
    return write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n{body}")


def _set_status(backend: str, name: str, version: int, status: str) -> None:
    """A version still registering: what a client between create and upload leaves (not possible over REST)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(backend)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE model_versions SET status = :s WHERE name = :n AND version = :v"),
                           {"s": status, "n": name, "v": version})
    engine.dispose()


def test_a_registry_apart_from_tracking_is_the_one_written_and_the_one_the_application_reads(
        tmp_path: Path, mlflow_server: Server, second_server: Server, unique: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = f"{unique}-fraud"
    tracking, registry = seed.client(mlflow_server.uri), seed.client(second_server.uri)
    for client in (tracking, registry):  # the same name on both: only the registry may change
        seed.make_model(client, model, ["Production", "Staging"], aliases={"champion": 1})
    _promote_file(tmp_path, model)
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri, "MLFLOW_REGISTRY_URI": second_server.uri}
    before = seed.snapshot(tracking, [model], times=True)

    with FaultProxy(mlflow_server.uri) as proxy:  # the tracking server, watched on the wire
        through = {**env, "MLFLOW_TRACKING_URI": proxy.uri}
        planned = stagectl("plan", "--format", "json", cwd=tmp_path, env=through)
        assert planned.returncode == 0, planned.stderr
        assert json.loads(planned.stdout)["tracking_uri"] == second_server.uri  # the report names the registry
        applied = stagectl("apply", "--allow-dirty", cwd=tmp_path, env=through)
    assert applied.returncode == 0, applied.stderr
    assert f"Registry: {second_server.uri}" in applied.stdout

    assert writes(proxy) == []  # not a tag, not the lease: the tracking server is not the registry
    assert seed.snapshot(tracking, [model], times=True) == before
    assert seed.snapshot(registry, [model])[model] == {
        "stages": {"1": "Archived", "2": "Production"}, "aliases": {"champion": "2"}}
    for name, value in env.items():  # the application: MLflow's own client, built from the same environment
        monkeypatch.setenv(name, value)
    from mlflow import MlflowClient

    assert MlflowClient().get_model_version_by_alias(model, "champion").version == "2"
    resolved = stagectl("resolve", model, "--stage", "production", cwd=tmp_path, env=env)
    assert resolved.stdout == f"models:/{model}/2\n", resolved.stderr


def test_registry_uri_option_and_file_key_come_in_mlflow_order(
        tmp_path: Path, mlflow_server: Server, second_server: Server, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(seed.client(second_server.uri), model, ["Production", "Staging"])
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nregistry:\n  registry_uri: {second_server.uri}\n"
                                    f"models:\n  {model}:\n    production: 2\n")
    by_file = stagectl("plan", "--tracking-uri", mlflow_server.uri, "--format", "json", cwd=tmp_path)
    assert json.loads(by_file.stdout)["tracking_uri"] == second_server.uri, by_file.stderr
    # The environment wins over the file, the option over both: here both name the tracking server,
    # which does not have the model, so the model is held there.
    env = {"MLFLOW_REGISTRY_URI": mlflow_server.uri}
    for args, environ in ((("--registry-uri", mlflow_server.uri), None), ((), env)):
        run = stagectl("plan", "--tracking-uri", mlflow_server.uri, *args, "--format", "json", cwd=tmp_path,
                       env=environ)
        assert run.returncode == 1
        assert json.loads(run.stdout)["tracking_uri"] == mlflow_server.uri
        assert json.loads(run.stdout)["held"][0]["model"] == model


AWKWARD = ["Bob's \"best\" model", "model\\new", "a\\x27b", "ends-with\\", "x(y), 'z'", "😀 fraud", "café-modèle",
           "model%1"]
LOOK_ALIKES = ["a'b", "model_1", "model\new"]  # what a mis-escaped filter or a LIKE would find


def test_every_name_mlflow_accepts_is_read_by_name_managed_and_exported(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    names = [f"{unique} {name}" for name in AWKWARD]
    others = [f"{unique} {name}" for name in LOOK_ALIKES]
    for name in names + others:
        seed.make_model(registry, name, ["Production", "Staging"], aliases={"champion": 1})
    _promote_file(tmp_path, *names)
    untouched = seed.snapshot(registry, others, times=True)

    with FaultProxy(mlflow_server.uri) as proxy:
        planned = stagectl("plan", "--tracking-uri", proxy.uri, "--format", "json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert Counter(path for _, path in proxy.seen) == dict.fromkeys(SEARCHES, 1)  # all of them in one list
    promoted = {s["model"] for s in json.loads(planned.stdout)["steps"] if s.get("to_stage") == "Production"}
    assert promoted == set(names)

    with FaultProxy(mlflow_server.uri) as proxy:
        applied = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert all(state == {"stages": {"1": "Archived", "2": "Production"}, "aliases": {"champion": "2"}}
               for state in seed.snapshot(registry, names).values())
    assert all(writes_to(proxy, name) for name in names)
    assert [name for name in others if writes_to(proxy, name)] == []  # not even a tag
    assert seed.snapshot(registry, others, times=True) == untouched

    exported = stagectl("export", *names, *others, "--tracking-uri", mlflow_server.uri, "-o", "exported.yaml",
                        cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    text = (tmp_path / "exported.yaml").read_text(encoding="utf-8")
    assert "😀 fraud" in text and "café-modèle" in text  # readable, not escaped
    assert set(yaml.safe_load(text)["models"]) == set(names + others)
    again = stagectl("plan", "-f", "exported.yaml", "--tracking-uri", mlflow_server.uri, "--detailed-exitcode",
                     cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_version_still_registering_holds_only_its_model(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    pending, ready, ghost = f"{unique}-pending", f"{unique}-ready", f"{unique}-ghost"
    seed.make_model(registry, pending, ["Production", "Staging"])
    seed.make_model(registry, ready, ["Production", "Staging"])
    _set_status(mlflow_server.backend, pending, 2, "PENDING_REGISTRATION")
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {ghost}:\n    production: 1\n"
                                    f"  {pending}:\n    production: 2\n  {ready}:\n    production: 2\n")
    before = seed.snapshot(registry, [pending], times=True)

    planned = stagectl("plan", "--tracking-uri", mlflow_server.uri, "--format", "json", cwd=tmp_path)
    assert planned.returncode == 1
    data = json.loads(planned.stdout)
    assert {s["model"] for s in data["steps"]} == {ready}
    assert {h["model"]: h["reason"] for h in data["held"]} == {
        ghost: "does not exist in the registry (stages.yaml:3:3)",
        pending: "version 2 is PENDING_REGISTRATION, not READY (stages.yaml:6:17)"}

    with FaultProxy(mlflow_server.uri) as proxy:
        applied = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path)
    assert applied.returncode == 1
    assert "Apply complete: 2 applied, 0 failed, 0 skipped." in applied.stdout, applied.stdout + applied.stderr
    assert f"{pending}: held, nothing planned for it: version 2 is PENDING_REGISTRATION" in applied.stdout
    assert f"{ghost}: held, nothing planned for it: does not exist in the registry" in applied.stdout
    assert seed.snapshot(registry, [ready])[ready]["stages"] == {"1": "Archived", "2": "Production"}
    assert writes_to(proxy, ready) and writes_to(proxy, pending) == [] and writes_to(proxy, ghost) == []
    assert seed.snapshot(registry, [pending], times=True) == before
    markdown = stagectl("apply", "--allow-dirty", "--tracking-uri", mlflow_server.uri, "--format", "markdown",
                        cwd=tmp_path)
    assert markdown.returncode == 1 and f"{pending}: held" in markdown.stdout

    # The version in Staging still registering: export leaves the stage to the registry, so plan agrees.
    exported = stagectl("export", pending, ready, "--tracking-uri", mlflow_server.uri, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert yaml.safe_load(exported.stdout)["models"][pending] == {"production": 1}
    write(tmp_path / "exported.yaml", exported.stdout)
    again = stagectl("plan", "-f", "exported.yaml", "--tracking-uri", mlflow_server.uri, "--detailed-exitcode",
                     cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_server_that_takes_no_list_of_names_is_asked_name_by_name(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    names = [f"{unique}-{i}" for i in range(4)] + [f"{unique} Bob's \"best\""]
    for name in names:
        seed.make_model(registry, name, ["Production", "Staging"])
    _promote_file(tmp_path, *names)

    def refuse_lists(n: int, method: str, path: str) -> str | None:  # as MLflow servers before 2.22 do
        return "reject" if "/search?" in path and "+IN+" in path else None

    with FaultProxy(mlflow_server.uri, faults=refuse_lists) as proxy:
        planned = stagectl("plan", "--tracking-uri", proxy.uri, "--format", "json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert len(proxy.injected) == 1  # refused once, never asked again
    searches = Counter(path for _, path in proxy.seen)
    # One refused list, then one search per name for the models and one per name for their versions.
    assert searches == {"/api/2.0/mlflow/registered-models/search": 1 + len(names),
                        "/api/2.0/mlflow/model-versions/search": len(names)}
    assert {s["model"] for s in json.loads(planned.stdout)["steps"]} == set(names)


def test_versions_of_a_model_the_registry_does_not_list_are_an_error_not_an_empty_registry(
        tmp_path: Path, unique: str) -> None:
    """A model search that answers nothing while versions exist (as MLflow 3's prompt filter makes 2.x servers
    answer): here the model's row is gone under its versions, in a local registry."""
    import sqlalchemy

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seed.make_model(seed.client(uri), "fraud", ["Production", "Staging"])
    engine = sqlalchemy.create_engine(uri)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("PRAGMA foreign_keys = OFF"))
        connection.execute(sqlalchemy.text("DELETE FROM registered_models WHERE name = 'fraud'"))
    engine.dispose()
    exported = stagectl("export", "--tracking-uri", uri, cwd=tmp_path)
    assert exported.returncode == 1
    assert "returns versions of 'fraud' but does not list the model" in exported.stderr, exported.stderr
    assert exported.stdout == ""


def test_the_story_on_an_older_mlflow_server(tmp_path: Path, old_server: Server) -> None:
    """Plan, apply, resolve and a whole-registry export on MLflow 2.9 and 2.22, names with '/' included."""
    registry = seed.client(old_server.uri)
    names = ["fraud", "team/fraud", "Bob's \"best\" model"]
    for name in names:  # the server is this test's own: these are all its models
        seed.make_model(registry, name, ["Production", "Staging"], aliases={"champion": 1})
    _promote_file(tmp_path, *names)
    with FaultProxy(old_server.uri) as proxy:
        planned = stagectl("plan", "--tracking-uri", proxy.uri, "--format", "json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert {s["model"] for s in json.loads(planned.stdout)["steps"]} == set(names)
    assert set(path for _, path in proxy.seen) == SEARCHES  # by name, whatever the server takes

    applied = stagectl("apply", "--allow-dirty", "--tracking-uri", old_server.uri, cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    resolved = stagectl("resolve", "team/fraud", "--stage", "production", "--tracking-uri", old_server.uri,
                        cwd=tmp_path)
    assert resolved.stdout == "models:/team/fraud/2\n", resolved.stderr

    exported = stagectl("export", "--tracking-uri", old_server.uri, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert yaml.safe_load(exported.stdout)["models"] == {
        name: {"production": 2, "staging": [], "archived": 1, "aliases": {"champion": 2}} for name in names}
    write(tmp_path / "exported.yaml", exported.stdout)
    again = stagectl("plan", "-f", "exported.yaml", "--tracking-uri", old_server.uri, "--detailed-exitcode",
                     cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
