"""Unity Catalog's rules, simulated: a loopback proxy in front of a real MLflow server refuses what UC refuses
(tests/unity.py). This tests stagectl's side of the rules; it is not a test on Databricks."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from controller import get_model
from tests import seed, unity
from tests.conftest import Server
from tests.e2e.helpers import stagectl, write
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.e2e

HEAD = "apiVersion: stagectl/v1\nlifecycle: {mode: aliases, production_alias: champion, staging_alias: challenger}\n"


def _file(fraud: str, churn: str, production: int, staging: int, flavor: bool = True) -> str:
    registry = "registry: {flavor: unity-catalog}\n" if flavor else ""
    return (f"{HEAD}{registry}models:\n  {fraud}:\n    production: {production}\n    staging: {staging}\n"
            f"  {churn}:\n    production: 1\n")


def test_a_unity_catalog_registry_gets_only_the_calls_it_serves_and_tag_keys_it_takes(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    fraud, churn = f"main.ml_{unique}.fraud", f"main.ml_{unique}.churn"
    for name in (fraud, churn):
        seed.make_model(registry, name, ["None", "None", "None"])
    file = write(tmp_path / "stages.yaml", _file(fraud, churn, 1, 2))
    assert stagectl("validate", "-f", str(file), cwd=tmp_path).returncode == 0
    filters: list[str] = []

    def refuse(method: str, path: str, body: bytes) -> str | None:
        if "model-versions/search" in path:
            filters.extend(parse_qs(urlsplit(path).query).get("filter", [""]))
        return unity.refuse(method, path, body)

    with FaultProxy(mlflow_server.uri, refuse=refuse) as proxy:
        uri = ["--tracking-uri", proxy.uri]
        first = stagectl("apply", "-f", str(file), *uri, "--allow-dirty", cwd=tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        write(file, _file(fraud, churn, 2, 3))
        second = stagectl("apply", "-f", str(file), *uri, "--allow-dirty", cwd=tmp_path)
        assert second.returncode == 0, second.stdout + second.stderr
        assert stagectl("plan", "-f", str(file), *uri, "--detailed-exitcode", cwd=tmp_path).returncode == 0
        resolved = get_model(fraud, stage="production", tracking_uri=proxy.uri, stages_file=file)
        assert (resolved.version, resolved.uri) == ("2", f"models:/{fraud}/2")
    assert proxy.refused == []
    assert {f.replace(" ", "") for f in filters} == {f"name='{fraud}'", f"name='{churn}'"}  # one model per search
    model = registry.get_registered_model(fraud)
    assert model.aliases == {"champion": "2", "challenger": "3"}
    assert model.tags["stagectl_lifecycle"] == "aliases; production=champion; staging=challenger"
    assert "stagectl_owner" in model.tags
    tags = {v: registry.get_model_version(fraud, v).tags for v in ("1", "2", "3")}
    assert tags["1"]["stagectl_archived"] == "true"
    assert {k for t in tags.values() for k in t} >= {"stagectl_commit", "stagectl_applied_commit"}
    assert not [k for t in [model.tags, *tags.values()] for k in t if k.startswith("stagectl") and "." in k]
    assert [v.current_stage for v in registry.search_model_versions(f"name = '{fraud}'")] == ["None"] * 3
    assert not [m.name for m in registry.search_registered_models() if m.name.endswith("stagectl_lease")]


def test_without_the_unity_catalog_flavor_the_simulated_registry_refuses_stagectls_calls(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    fraud, churn = f"main.ml_{unique}.fraud", f"main.ml_{unique}.churn"
    for name in (fraud, churn):
        seed.make_model(registry, name, ["None", "None", "None"])
    file = write(tmp_path / "stages.yaml", _file(fraud, churn, 1, 2, flavor=False))
    with FaultProxy(mlflow_server.uri, refuse=unity.refuse) as proxy:
        done = stagectl("apply", "-f", str(file), "--tracking-uri", proxy.uri, "--allow-dirty", cwd=tmp_path)
    assert done.returncode == 1 and proxy.refused  # the proxy bites: the flavor is what the first test relies on
    assert registry.get_registered_model(fraud).aliases == {}


def test_validate_refuses_what_unity_catalog_would_at_its_line(tmp_path: Path) -> None:
    file = write(tmp_path / "stages.yaml", """\
apiVersion: stagectl/v1
registry: {flavor: unity-catalog}
models:
  fraud-detector:
    production: 1
  main.ml.Churn:
    lifecycle: aliases
    production: 1
  main.ml.ranker:
    lifecycle: {mode: both, production_alias: Champion}
    production: 1
""")
    done = stagectl("validate", "-f", str(file), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines()[:5] == [
        f"{file}:4:3: models.fraud-detector: Unity Catalog names a model catalog.schema.model: three parts, no "
        "spaces or slashes",
        f"{file}:4:3: models.fraud-detector: Unity Catalog has no stages; its lifecycle is stages: set "
        "'lifecycle: aliases' (for the file, or this model)",
        f"{file}:6:3: models.main.ml.Churn: Unity Catalog keeps names in lowercase, so the registry would answer "
        "with 'main.ml.churn': write that",
        f"{file}:10:16: models.main.ml.ranker: Unity Catalog has no stages; its lifecycle is both: set "
        "'lifecycle: aliases' (for the file, or this model)",
        f"{file}:10:16: models.main.ml.ranker: alias 'Champion': Unity Catalog keeps names in lowercase; write "
        "'champion'",
    ]
    plain = write(tmp_path / "plain.yaml", "apiVersion: stagectl/v1\nmodels:\n  fraud-detector:\n    production: 1\n")
    assert stagectl("validate", "-f", str(plain), cwd=tmp_path).returncode == 0
    by_uri = stagectl("validate", "-f", str(plain), cwd=tmp_path, env={"MLFLOW_REGISTRY_URI": "databricks-uc"})
    assert by_uri.returncode == 1 and "three parts" in by_uri.stderr
