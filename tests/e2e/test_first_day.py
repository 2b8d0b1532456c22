"""What a new user meets first: each mistake gets one line saying what is wrong and what to do next."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import stagectl
from tests.servers import start_server, stop_server

pytestmark = pytest.mark.e2e


def _file(directory: Path, model: str) -> Path:
    path = directory / "stages.yaml"
    path.write_text(f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n")
    return path


def _one_error_line(result: object) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 1, stderr  # type: ignore[attr-defined]
    assert "unexpected error" not in stderr and "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_no_registry_configured_says_how_to_name_one(tmp_path: Path) -> None:
    _file(tmp_path, "fraud-detector")
    line = _one_error_line(stagectl("plan", cwd=tmp_path))
    assert line.startswith("error: no registry at sqlite:///mlflow.db: mlflow.db does not exist")
    for way in ("--tracking-uri", "MLFLOW_TRACKING_URI", "registry.tracking_uri"):
        assert way in line
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("content", [b"", b"hello, not a database\n", None], ids=["empty", "text", "foreign-sqlite"])
def test_a_sqlite_uri_to_a_file_that_is_not_a_registry_is_refused_and_the_file_left_alone(
        tmp_path: Path, content: bytes | None) -> None:
    _file(tmp_path, "fraud-detector")
    db = tmp_path / "registry.db"
    if content is None:
        with sqlite3.connect(db) as made:
            made.execute("CREATE TABLE notes (body TEXT)")
        made.close()
    else:
        db.write_bytes(content)
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    for command in (["plan"], ["apply", "--allow-dirty"], ["export"], ["drift"], ["cleanup-report"]):
        line = _one_error_line(stagectl(*command, "--tracking-uri", f"sqlite:///{db}", cwd=tmp_path))
        assert line.startswith(f"error: no registry at sqlite:///{db}: {db} ")
        assert "nothing was written" in line and "--tracking-uri" in line
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry.db", "stages.yaml"]


def test_a_uri_without_scheme_suggests_http(tmp_path: Path, mlflow_server: Server) -> None:
    _file(tmp_path, "fraud-detector")
    host_port = mlflow_server.uri.removeprefix("http://")
    line = _one_error_line(stagectl("plan", "--tracking-uri", host_port, cwd=tmp_path))
    assert f"write http://{host_port}" in line and "maintenance mode" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stages.yaml"]


def test_a_uri_with_a_wrong_path_says_it_is_not_an_mlflow_server(tmp_path: Path, mlflow_server: Server) -> None:
    _file(tmp_path, "fraud-detector")
    for wrong in (f"{mlflow_server.uri}/mlflow", f"{mlflow_server.uri}/?x=1"):
        line = _one_error_line(stagectl("plan", "--tracking-uri", wrong, cwd=tmp_path))
        assert line.startswith(f"error: the URI {wrong} does not point at an MLflow server"), line
        assert "<" not in line and "Response body" not in line


def test_a_misspelt_model_gets_the_registry_name_it_resembles(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    seed.make_model(registry, f"{unique}-fraud-detector", ["Production", "Staging"])
    _file(tmp_path, f"{unique}-fraud-detectr")
    hint = f"does not exist in the registry; did you mean '{unique}-fraud-detector'?"
    for command in (["plan"], ["drift"], ["apply", "--allow-dirty"]):
        result = stagectl(*command, "--tracking-uri", mlflow_server.uri, cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"{unique}-fraud-detectr: held, nothing planned for it: {hint}" in result.stdout, result.stdout


def test_a_misspelt_model_gets_its_look_alike_beyond_the_first_page_of_models(tmp_path: Path) -> None:
    """A registry of more models than one search page holds: the name a misspelling resembles sorts after the
    first page, and is found by searching for names that start like it."""
    server = start_server(tmp_path)
    try:
        seed.bulk(server.backend, "another-model", 1001, 2)  # a full page of 1,000 sorts before the one meant
        seed.bulk(server.backend, "zz-fraud-detector", 1, 2)
        _file(tmp_path, "zz-fraud-detectr-00000")
        planned = stagectl("plan", "--tracking-uri", server.uri, cwd=tmp_path)
    finally:
        stop_server(server)
    assert planned.returncode == 1
    assert "zz-fraud-detectr-00000: held, nothing planned for it: does not exist in the registry; did you mean " \
           "'zz-fraud-detector-00000'?" in planned.stdout, planned.stdout


def test_history_without_a_stages_file_says_file_not_found(tmp_path: Path) -> None:
    line = _one_error_line(stagectl("history", "fraud-detector", cwd=tmp_path))
    assert line == "stages.yaml: file not found"


def test_debug_is_accepted_after_the_command_name(tmp_path: Path) -> None:
    _file(tmp_path, "fraud-detector")
    result = stagectl("plan", "--debug", cwd=tmp_path)
    assert result.returncode == 1 and "No such option" not in result.stderr
    assert "Traceback" in result.stderr  # --debug took effect: the error comes with its traceback
