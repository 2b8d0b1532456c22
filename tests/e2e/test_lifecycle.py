"""Lifecycle modes against a real server: aliases without a single stage call, both with a stage reader and an
alias reader polling between the writes, and the whole migration with applications resolving at every step."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller import get_model
from controller.edit import yaml_key
from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import stagectl, write
from tests.faultproxy import WRITES, FaultProxy

pytestmark = pytest.mark.e2e

NAMES = "{mode: aliases, production_alias: champion, staging_alias: challenger}"


def _file(name: str, production: int, staging: int | None = None, lifecycle: str | None = None) -> str:
    body = f"    production: {production}\n" + (f"    staging: {staging}\n" if staging else "")
    head = f"lifecycle: {lifecycle}\n" if lifecycle else ""
    return f"apiVersion: stagectl/v1\n{head}models:\n  {yaml_key(name)}:\n{body}"


class Readers:
    """What a reader by stage and a reader by alias get, polled without pause while an apply runs."""

    def __init__(self, uri: str, name: str, alias: str) -> None:
        self.uri, self.name, self.alias = uri, name, alias
        self.seen: list[tuple[frozenset[str], str | None, str | None]] = []  # (Production, alias's version, its stage)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        registry = seed.client(self.uri)
        while not self._stop.is_set():
            versions = registry.search_model_versions(f"name = '{self.name}'")
            production = frozenset(v.version for v in versions if v.current_stage == "Production")
            try:
                mv = registry.get_model_version_by_alias(self.name, self.alias)
                by_alias, stage = str(mv.version), mv.current_stage
            except Exception:
                by_alias, stage = None, None
            self.seen.append((production, by_alias, stage))

    def __enter__(self) -> Readers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _slow_writes(proxy_seen: list[int]) -> Callable[[int, str, str, int], None]:
    def after(n: int, method: str, path: str, status: int) -> None:
        if method in WRITES:
            proxy_seen.append(n)
            time.sleep(0.3)  # the write has landed: the readers look before the next one is sent

    return after


def _apply(file: Path, uri: str, cwd: Path) -> dict[str, object]:
    done = stagectl("apply", "-f", str(file), "--tracking-uri", uri, "--format", "json", "--allow-dirty", cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _planned(file: Path, uri: str, cwd: Path) -> list[dict[str, str]]:
    done = stagectl("plan", "-f", str(file), "--tracking-uri", uri, "--format", "json", cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    steps: list[dict[str, str]] = json.loads(done.stdout)["steps"]
    return steps


def test_aliases_mode_promotes_and_archives_without_one_stage_call_and_readers_follow_it(
        tmp_path: Path, mlflow_server: Server, unique: str) -> None:
    _aliases_story(mlflow_server, f"{unique}-aliases 'q' \\ 🚀", tmp_path)


def test_aliases_mode_on_an_older_mlflow_server(tmp_path: Path, own_old_server: Server) -> None:
    """The same story on MLflow 2.9, the first release that deprecates stages, and on 2.22."""
    _aliases_story(own_old_server, "aliases 'q' \\ 🚀", tmp_path)


def _aliases_story(mlflow_server: Server, name: str, tmp_path: Path) -> None:
    registry = seed.client(mlflow_server.uri)
    seed.make_model(registry, name, ["None", "None", "None"])
    file = write(tmp_path / "stages.yaml", _file(name, 1, 2, NAMES))
    with FaultProxy(mlflow_server.uri) as proxy:
        _apply(file, proxy.uri, tmp_path)
        write(file, _file(name, 2, 3, NAMES))
        assert [(s["action"], s.get("alias"), s["version"]) for s in _planned(file, proxy.uri, tmp_path)] == [
            ("set_alias", "champion", "2"), ("set_alias", "challenger", "3"), ("mark_archived", None, "1")]
        _apply(file, proxy.uri, tmp_path)
    assert proxy.seen and not [p for _, p in proxy.seen if "stage" in p.rsplit("/", 1)[-1]]  # no stage API at all
    model = registry.get_registered_model(name)
    assert model.aliases == {"champion": "2", "challenger": "3"}
    assert model.tags["stagectl.lifecycle"] == "aliases; production=champion; staging=challenger"
    versions = {v: registry.get_model_version(name, v) for v in ("1", "2", "3")}
    assert {v: mv.current_stage for v, mv in versions.items()} == {"1": "None", "2": "None", "3": "None"}
    assert versions["1"].tags.get("stagectl.archived") == "true" and "stagectl.archived" not in versions["2"].tags

    resolved = get_model(name, stage="production", tracking_uri=mlflow_server.uri)
    assert (resolved.version, resolved.uri, resolved.stage) == ("2", f"models:/{name}/2", "Production")
    assert get_model(name, stage="staging", tracking_uri=mlflow_server.uri).version == "3"
    cli = stagectl("resolve", name, "--stage", "production", "--tracking-uri", mlflow_server.uri, cwd=tmp_path)
    assert cli.stdout.strip() == f"models:/{name}/2", cli.stderr
    assert stagectl("plan", "-f", str(file), "--tracking-uri", mlflow_server.uri, "--detailed-exitcode",
                    cwd=tmp_path).returncode == 0
    exported = stagectl("export", name, "--tracking-uri", mlflow_server.uri, cwd=tmp_path)
    assert "lifecycle: {mode: aliases, production_alias: champion, staging_alias: challenger}" in exported.stdout
    assert "production: 2\n" in exported.stdout and "archived: 1\n" in exported.stdout
    assert "champion" not in exported.stdout.split("staging_alias: challenger}", 1)[1]  # not a user alias too


def test_the_migration_from_stages_through_both_to_aliases_keeps_every_reader_on_a_serving_version(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    name = f"{unique}-migrating"
    seed.make_model(registry, name, ["None", "None", "None"])
    file = write(tmp_path / "stages.yaml", _file(name, 1, 2))
    _apply(file, mlflow_server.uri, tmp_path)
    assert get_model(name, stage="production", tracking_uri=mlflow_server.uri).version == "1"

    # Pull request 1: stages and aliases at once. Its plan sets aliases and touches no stage.
    migrated = stagectl("migrate", "--to", "both", "--production-alias", "champion", "--staging-alias",
                        "challenger", "-f", str(file), cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert {s["action"] for s in _planned(file, mlflow_server.uri, tmp_path)} == {"set_alias", "set_lifecycle"}
    _apply(file, mlflow_server.uri, tmp_path)
    assert get_model(name, stage="production", tracking_uri=mlflow_server.uri).version == "1"

    # A promotion in both: each write lands, then both readers look before the next one.
    for version, stage in (("2", "production"), ("3", "staging")):
        moved = stagectl("transition-version", "--model-name", name, "--version", version, "--stage", stage,
                         "-f", str(file), cwd=tmp_path)
        assert moved.returncode == 0, moved.stderr
    slowed: list[int] = []
    with FaultProxy(mlflow_server.uri, after=_slow_writes(slowed)) as proxy, \
            Readers(mlflow_server.uri, name, "champion") as readers:
        _apply(file, proxy.uri, tmp_path)
    assert len(readers.seen) > len(slowed) >= 3
    assert {production for production, _, _ in readers.seen} <= {frozenset({"1"}), frozenset({"2"})}
    assert {(alias, stage) for _, alias, stage in readers.seen} <= {("1", "Production"), ("2", "Staging"),
                                                                   ("2", "Production")}
    assert readers.seen[-1] == (frozenset({"2"}), "2", "Production")
    assert get_model(name, stage="production", tracking_uri=mlflow_server.uri).version == "2"

    # Pull request 3: aliases only. The stages empty in the same reviewed plan; the alias never moves.
    migrated = stagectl("migrate", "--to", "aliases", "-f", str(file), cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "lifecycle: {mode: aliases, production_alias: champion, staging_alias: challenger}" in file.read_text()
    planned = [(s["action"], s.get("version"), s.get("to_stage")) for s in _planned(file, mlflow_server.uri, tmp_path)]
    assert planned == [("set_lifecycle", None, None), ("mark_archived", "1", None),
                       ("transition", "2", "None"), ("transition", "3", "None")]
    with Readers(mlflow_server.uri, name, "champion") as readers:
        _apply(file, mlflow_server.uri, tmp_path)
        resolved = get_model(name, stage="production", tracking_uri=mlflow_server.uri)
    assert {alias for _, alias, _ in readers.seen} == {"2"}
    assert readers.seen[-1][0] == frozenset()  # models:/NAME/Production now finds nothing: it fails loudly
    assert resolved.version == "2" and resolved.uri == f"models:/{name}/2"
    assert get_model(name, stage="production", tracking_uri=mlflow_server.uri).version == "2"

    # Rolling back pull request 3 puts the versions back in their stages.
    write(file, file.read_text().replace("mode: aliases", "mode: both"))
    _apply(file, mlflow_server.uri, tmp_path)
    stages = {v.version: v.current_stage for v in registry.search_model_versions(f"name = '{name}'")}
    assert stages == {"1": "Archived", "2": "Production", "3": "Staging"}
