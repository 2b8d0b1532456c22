"""Real mlflow servers on free loopback ports, for the tests and the benchmark."""

from __future__ import annotations

import os
import shutil
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
