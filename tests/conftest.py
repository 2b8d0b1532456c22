"""Shared fixtures: a real mlflow server on a free loopback port, and registry factories."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import seed

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="run the long fault and concurrency loops in full")


@pytest.fixture(scope="session")
def rounds(request: pytest.FixtureRequest) -> int:
    """How many times a concurrency or fault loop repeats: a few by default, many with --slow (CI)."""
    return 25 if request.config.getoption("--slow") else 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    uri: str
    process: subprocess.Popen[bytes]
    log: Path
    backend: str


def start_server(workdir: Path, backend_uri: str | None = None, extra_args: tuple[str, ...] = ()) -> Server:
    port = free_port()
    backend = backend_uri or f"sqlite:///{workdir / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = workdir / "server.log"
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    process = subprocess.Popen(
        [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
         "--backend-store-uri", backend, "--default-artifact-root", str(workdir / "artifacts"), *extra_args],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return Server(uri, process, log, backend)
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"mlflow server did not answer within 120 s:\n{log.read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    stop_server(server)


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
