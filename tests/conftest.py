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
