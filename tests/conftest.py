"""Shared fixtures: a real mlflow server on a free loopback port, and registry factories."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import seed
from tests.servers import OLD_SERVERS, Server, free_port, server_venv, start_postgres, start_server, stop_server

__all__ = ["ROOT", "Server", "free_port", "start_server", "stop_server"]

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true",
                     help="run the long fault and concurrency loops in full, and the tests on older MLflow servers")


@pytest.fixture(scope="session")
def rounds(request: pytest.FixtureRequest) -> int:
    """How many times a concurrency or fault loop repeats: a few by default, more with --slow (CI). The races
    that matter most are forced deterministically elsewhere; these loops look for the ones nobody thought of,
    and a round costs up to 20 s on each backend."""
    return 12 if request.config.getoption("--slow") else 5


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def mlflow_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server per backend for the whole session: a sqlite file, and PostgreSQL as in production."""
    workdir = tmp_path_factory.mktemp(f"mlflow-server-{request.param}")
    postgres = start_postgres() if request.param == "postgresql" else None
    server = start_server(workdir, backend_uri=postgres.uri if postgres else None)
    yield server
    stop_server(server)
    if postgres:
        postgres.stop()


@pytest.fixture
def registry(mlflow_server: Server) -> seed.ModelRegistryClient:
    return seed.client(mlflow_server.uri)


@pytest.fixture
def unique() -> str:
    """A fresh model-name prefix: tests share one server and must not see each other's models."""
    return f"t{uuid.uuid4().hex[:8]}"


AUTH_USERS = {"admin": ("admin", "admin-pw-4417"), "reader": ("reader", "reader-pw-2281"),
              "editor": ("editor", "editor-pw-9936")}


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`mlflow server --app-name basic-auth`, with an admin, a READ user and an EDIT-capable user."""
    workdir = tmp_path_factory.mktemp("auth-server")
    admin = AUTH_USERS["admin"]
    ini = workdir / "basic_auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{workdir / 'auth.db'}\n"
                   f"admin_username = {admin[0]}\nadmin_password = {admin[1]}\nauth_cache_ttl_seconds = 60\n"
                   "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    saved = dict(os.environ)
    os.environ.update({"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-key"})
    try:
        server = start_server(workdir, extra_args=("--app-name", "basic-auth"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    os.environ.update({"MLFLOW_TRACKING_USERNAME": admin[0], "MLFLOW_TRACKING_PASSWORD": admin[1]})
    try:
        from mlflow.server import get_app_client

        client = get_app_client("basic-auth", tracking_uri=server.uri)
        client.create_user(*AUTH_USERS["reader"])
        client.create_user(*AUTH_USERS["editor"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def second_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Another current server: a registry kept apart from the tracking server."""
    server = start_server(tmp_path_factory.mktemp("second-server"))
    yield server
    stop_server(server)


@pytest.fixture(scope="session", params=sorted(OLD_SERVERS))
def old_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server of an older MLflow release (2.9, 2.22), from a venv built once and cached (see
    tests/servers.py); only with --slow, the first build taking about a minute each."""
    if not request.config.getoption("--slow"):
        pytest.skip("older MLflow servers run with --slow")
    bin_dir = server_venv(request.param)
    server = start_server(tmp_path_factory.mktemp(f"mlflow-{request.param}"), bin_dir=bin_dir)
    yield server
    stop_server(server)


@pytest.fixture(params=sorted(OLD_SERVERS))
def own_old_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """As old_server, but the test's alone: for a test whose models would show in another's whole-registry read."""
    if not request.config.getoption("--slow"):
        pytest.skip("older MLflow servers run with --slow")
    server = start_server(tmp_path_factory.mktemp(f"mlflow-{request.param}"), bin_dir=server_venv(request.param))
    yield server
    stop_server(server)
