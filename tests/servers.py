"""Real mlflow servers on free loopback ports, for the tests and the benchmark."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


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


# Older MLflow servers, each in a venv of its own, built once and kept: what teams still run. The pins are what
# those releases need to start today (SQLAlchemy 2.1 breaks them); a change of pins builds a new venv.
OLD_SERVERS = {
    "2.9.2": ("mlflow==2.9.2", "sqlalchemy<2.1", "setuptools<81"),
    "2.22.4": ("mlflow==2.22.4", "sqlalchemy<2.1", "setuptools<81"),
}
SERVER_VENVS = Path(os.environ.get("STAGECTL_SERVER_VENVS") or Path.home() / ".cache" / "stagectl-test-servers")


def server_venv(version: str) -> Path:
    """The bin directory of a venv holding MLflow `version` (OLD_SERVERS), built on first use (about a minute).

    A lock keeps parallel test sessions from building the same venv twice; a venv is used only once complete.
    """
    pins = OLD_SERVERS[version]
    key = hashlib.sha256(" ".join(pins).encode()).hexdigest()[:8]
    venv = SERVER_VENVS / f"mlflow-{version}-{key}"
    done = venv / ".complete"
    if done.exists():
        return venv / "bin"
    SERVER_VENVS.mkdir(parents=True, exist_ok=True)
    with (SERVER_VENVS / f"mlflow-{version}-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            started = time.monotonic()
            for command in ([sys.executable, "-m", "venv", str(venv)],
                            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                             "--disable-pip-version-check", *pins]):
                result = subprocess.run(command, capture_output=True, text=True)
                if result.returncode != 0:
                    raise RuntimeError(f"building the MLflow {version} server venv failed: {' '.join(command)}\n"
                                       f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
            done.write_text(f"{' '.join(pins)}\nbuilt in {time.monotonic() - started:.0f} s\n")
    return venv / "bin"


def start_server(workdir: Path, backend_uri: str | None = None, extra_args: tuple[str, ...] = (),
                 bin_dir: Path | None = None, env: dict[str, str] | None = None) -> Server:
    """`mlflow server` on a free loopback port; from `bin_dir` (an older release's venv) when given; `env` adds
    to its environment."""
    port = free_port()
    backend = backend_uri or f"sqlite:///{workdir / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
           **(env or {})}
    if bin_dir is not None:
        env.pop("PYTHONPATH", None)  # the server's own venv, nothing of ours
    log = workdir / "server.log"
    mlflow = shutil.which("mlflow", path=str(bin_dir or Path(sys.executable).parent)) or "mlflow"
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
    """Stop the server and every process it started: MLflow 2.x runs gunicorn as a child that outlives it."""
    _signal_group(server, signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
    _signal_group(server, signal.SIGKILL)  # anything of its session still there


def _signal_group(server: Server, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.process.pid, sig)  # its own session (start_new_session): only its processes




@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster on loopback, in a temp data dir."""

    uri: str
    datadir: Path
    _as: list[str]
    _bin: Path

    def stop(self) -> None:
        subprocess.run([*self._as, str(self._bin / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"],
                       capture_output=True, check=False)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)  # the whole temp dir: data, socket, log


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL binaries (the Makefile installs the package when they are missing)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def start_postgres() -> Postgres:
    """initdb, start on a free port and create a database; runs as the postgres user when we are root."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: `make test` installs Debian's postgresql package")
    datadir = Path(tempfile.mkdtemp(prefix="stagectl-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(datadir, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*args: str) -> None:
        result = subprocess.run([*run_as, *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    run(str(bin_dir / "initdb"), "-D", str(datadir / "data"), "-A", "trust", "-U", "mlflow", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(datadir / "data"), "-l", str(datadir / "log"), "-w", "-o",
        f"-p {port} -h 127.0.0.1 -k {datadir} -c fsync=off -c max_connections=200", "start")
    run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow")
    # The driver named explicitly: SQLAlchemy 2.1 would pick psycopg 3 for a plain postgresql:// URI.
    return Postgres(f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow", datadir / "data", run_as, bin_dir)
