"""Two applies at once must exclude each other: never two versions in production where one is declared."""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import pytest

from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import STAGECTL, Reader, write

pytestmark = pytest.mark.e2e


def _reset(registry: seed.ModelRegistryClient, model: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        registry.transition_model_version_stage(model, "1", "Production", archive_existing_versions=True)


@pytest.mark.parametrize("same_file", [False, True], ids=["different-files", "same-file"])
def test_concurrent_applies_never_leave_two_versions_in_production(
        same_file: bool, tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str,
        rounds: int) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging", "Staging"])
    files = [write(tmp_path / f"{name}.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: {v}\n")
             for name, v in (("a", 2), ("b", 2 if same_file else 3))]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
           "MLFLOW_TRACKING_URI": mlflow_server.uri}
    for _ in range(rounds):
        _reset(registry, model)
        with Reader(mlflow_server.uri, [model]) as watcher:
            runs = [subprocess.Popen([STAGECTL, "apply", "-f", str(f)], cwd=tmp_path, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in files]
            results = [(r.wait(timeout=120), *r.communicate()) for r in runs]
        assert [code for code, _, _ in results] == [0, 0], results
        stages = seed.snapshot(registry, [model])[model]["stages"]  # type: ignore[index]
        in_production = sorted(v for v, s in stages.items() if s == "Production")
        assert len(in_production) == 1 and in_production[0] in ("2", "3"), stages
        assert watcher.most == 1, f"a reader saw {watcher.most} versions in Production at once"
        assert "stagectl-lease" not in [m.name for m in registry.search_registered_models()]
