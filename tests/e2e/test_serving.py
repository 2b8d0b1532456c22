"""The application side against a real server: get_model, stagectl resolve, stagectl cleanup-report."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy

from controller import ResolvedModel, get_model
from controller.errors import AmbiguousModelError, ResolveError, UnreviewedModelError
from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import stagectl, write

pytestmark = pytest.mark.e2e


@pytest.fixture
def fraud(registry: seed.ModelRegistryClient, unique: str) -> str:
    name = f"{unique}-fraud"
    seed.make_model(registry, name, ["Archived", "Production", "Staging"], aliases={"champion": 2, "old": 1})
    return name


def test_resolves_by_stage_and_by_alias_to_a_pinned_version(mlflow_server: Server, fraud: str) -> None:
    live = get_model(fraud, stage="production", tracking_uri=mlflow_server.uri)
    assert isinstance(live, ResolvedModel)
    assert (live.name, live.version, live.stage, live.uri) == (fraud, "2", "Production", f"models:/{fraud}/2")
    assert live.aliases == ("champion",) and live.model is None
    assert get_model(fraud, stage="Staging", tracking_uri=mlflow_server.uri).version == "3"
    assert get_model(fraud, alias="old", tracking_uri=mlflow_server.uri).stage == "Archived"


def test_the_pinned_uri_stays_on_its_version_when_the_stage_moves(
        mlflow_server: Server, registry: seed.ModelRegistryClient, fraud: str) -> None:
    from mlflow import MlflowClient
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    pinned = get_model(fraud, stage="production", tracking_uri=mlflow_server.uri).uri
    registry.transition_model_version_stage(fraud, "3", "Production", archive_existing_versions=True)
    # Resolved by MLflow after the move, as a loader would: the pinned URI still names version 2,
    # while the stage URI it replaces now names version 3.
    client = MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    assert get_model_name_and_version(client, pinned) == (fraud, "2")
    assert get_model_name_and_version(client, f"models:/{fraud}/Production") == (fraud, "3")
    assert client.get_model_version(*get_model_name_and_version(client, pinned)).current_stage == "Archived"
    assert get_model(fraud, stage="production", tracking_uri=mlflow_server.uri).uri == f"models:/{fraud}/3"


def test_two_versions_in_production_is_an_error_naming_both(
        mlflow_server: Server, registry: seed.ModelRegistryClient, fraud: str) -> None:
    registry.transition_model_version_stage(fraud, "3", "Production")  # without archiving v2
    with pytest.raises(AmbiguousModelError, match=r"versions 2, 3 are in Production; expected exactly one"):
        get_model(fraud, stage="production", tracking_uri=mlflow_server.uri)


def test_empty_stage_missing_alias_and_bad_arguments_are_clear_errors(mlflow_server: Server, fraud: str) -> None:
    registry_uri = mlflow_server.uri
    with pytest.raises(AmbiguousModelError, match="no version is in Production"):
        registry = seed.client(registry_uri)
        registry.transition_model_version_stage(fraud, "2", "Archived")
        get_model(fraud, stage="production", tracking_uri=registry_uri)
    with pytest.raises(ResolveError, match="has no alias 'ghost'"):
        get_model(fraud, alias="ghost", tracking_uri=registry_uri)
    with pytest.raises(ResolveError, match="exactly one of stage= and alias="):
        get_model(fraud, stage="production", alias="champion", tracking_uri=registry_uri)
    with pytest.raises(ResolveError, match="unknown stage 'prod'"):
        get_model(fraud, stage="prod", tracking_uri=registry_uri)


def test_disagreement_with_the_reviewed_file_is_refused(tmp_path: Path, mlflow_server: Server, fraud: str) -> None:
    agreeing = write(tmp_path / "ok.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {fraud}:\n    production: 2\n"
                                          "    aliases: {champion: 2}\n")
    assert get_model(fraud, stage="production", tracking_uri=mlflow_server.uri, stages_file=agreeing).version == "2"
    reviewed = write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {fraud}:\n    production: 3\n"
                                               "    aliases: {champion: 3}\n")
    with pytest.raises(UnreviewedModelError, match=r"has version 2 in Production in the registry, but .* declares 3"):
        get_model(fraud, stage="production", tracking_uri=mlflow_server.uri, stages_file=reviewed)
    with pytest.raises(UnreviewedModelError, match="alias 'champion' is on version 2 in the registry"):
        get_model(fraud, alias="champion", tracking_uri=mlflow_server.uri, stages_file=reviewed)


# Loading goes through mlflow.pyfunc, the same on any backend. Logging the model for it fails against the
# PostgreSQL-backed server here (MLflow registers no version 1), so this test runs on the sqlite one.
@pytest.mark.parametrize("mlflow_server", ["sqlite"], indirect=True)
def test_load_true_loads_a_real_pyfunc_model(tmp_path: Path, mlflow_server: Server, unique: str) -> None:
    script = f"""
import mlflow, mlflow.pyfunc
from mlflow.tracking._model_registry.client import ModelRegistryClient

class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [2 * x for x in model_input]

mlflow.set_tracking_uri({mlflow_server.uri!r})
with mlflow.start_run():
    mlflow.pyfunc.log_model(name="m", python_model=Doubler(), pip_requirements=[],
                            registered_model_name={unique + "-doubler"!r})
ModelRegistryClient({mlflow_server.uri!r}, {mlflow_server.uri!r}).set_registered_model_alias(
    {unique + "-doubler"!r}, "champion", "1")
"""
    logged = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert logged.returncode == 0, logged.stderr[-3000:]
    live = get_model(f"{unique}-doubler", alias="champion", tracking_uri=mlflow_server.uri, load=True)
    assert live.uri == f"models:/{unique}-doubler/1" and live.run_id
    assert list(live.model.predict([1, 2, 3])) == [2, 4, 6]


def test_importing_controller_does_not_import_mlflow() -> None:
    probe = "import sys, controller; print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout == "[]\n"


def test_resolve_prints_only_the_pinned_uri(tmp_path: Path, mlflow_server: Server, fraud: str,
                                            registry: seed.ModelRegistryClient) -> None:
    uri = ["--tracking-uri", mlflow_server.uri]
    result = stagectl("resolve", fraud, "--stage", "production", *uri, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"models:/{fraud}/2\n")
    record = stagectl("resolve", fraud, "--alias", "champion", *uri, "--format", "json", cwd=tmp_path)
    as_json = json.loads(record.stdout)
    assert as_json["uri"] == f"models:/{fraud}/2" and as_json["stage"] == "Production"
    registry.transition_model_version_stage(fraud, "3", "Production")
    ambiguous = stagectl("resolve", fraud, "--stage", "production", *uri, cwd=tmp_path)
    assert ambiguous.returncode == 1 and ambiguous.stdout == ""
    assert "versions 2, 3 are in Production" in ambiguous.stderr
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {fraud}:\n    aliases: {{champion: 3}}\n")
    disagree = stagectl("resolve", fraud, "--alias", "champion", "--check-file", "stages.yaml", *uri, cwd=tmp_path)
    assert disagree.returncode == 1 and disagree.stdout == ""
    assert "alias 'champion' is on version 2 in the registry, but stages.yaml declares version 3" in disagree.stderr


def test_cleanup_report_lists_only_old_unreferenced_unmentioned_archived_versions(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    name = f"{unique}-m"
    # v1 old archived (candidate), v2 old archived but aliased, v3 old archived but in the file,
    # v4 recently archived, v5 in production.
    seed.make_model(registry, name, ["Archived", "Archived", "Archived", "Archived", "Production"],
                    aliases={"rollback": 2})
    long_ago = int((time.time() - 200 * 86400) * 1000)
    engine = sqlalchemy.create_engine(mlflow_server.backend)  # sqlite or PostgreSQL, through SQLAlchemy
    with engine.begin() as db:
        db.execute(sqlalchemy.text("UPDATE model_versions SET last_updated_time = :t "
                                   "WHERE name = :n AND version IN (1, 2, 3)"), {"t": long_ago, "n": name})
    engine.dispose()
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {name}:\n    archived: [3]\n")
    uri = ["--tracking-uri", mlflow_server.uri]
    data = json.loads(stagectl("cleanup-report", name, *uri, "--format", "json", cwd=tmp_path).stdout)
    assert [(c["model"], c["version"], c["idle_days"]) for c in data["candidates"]] == [(name, "1", 200)]
    text = stagectl("cleanup-report", name, *uri, cwd=tmp_path)
    assert text.returncode == 0
    assert "1 archived version could be deleted" in text.stdout
    assert text.stdout.splitlines()[-1].split()[:2] == [name, "1"]
    recent = json.loads(stagectl("cleanup-report", name, *uri, "--older-than", "0s", "--format", "json",
                                 cwd=tmp_path).stdout)
    assert [c["version"] for c in recent["candidates"]] == ["1", "4"]
    md = stagectl("cleanup-report", name, *uri, "--format", "markdown", cwd=tmp_path).stdout
    assert md.startswith("### stagectl cleanup report") and f"| {name} | 1 |" in md
    assert seed.snapshot(registry, [name])[name]["stages"] == {  # type: ignore[index]
        "1": "Archived", "2": "Archived", "3": "Archived", "4": "Archived", "5": "Production"}
