"""Run the real stagectl command as a subprocess, and watch the registry while it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import seed

STAGECTL = str(Path(sys.executable).parent / "stagectl")


def stagectl(*args: str, cwd: Path, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STAGECTL_"))}
    base["NO_COLOR"] = "1"
    return subprocess.run([STAGECTL, *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


FAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), Path("libfaketime.so.1"))


def skewed(offset: str) -> dict[str, str]:
    """The environment that moves a process's wall clock by `offset` (libfaketime), its monotonic clock left true."""
    if not FAKETIME.exists():
        pytest.fail("libfaketime is missing: `make test` installs Debian's faketime package")
    return {"LD_PRELOAD": str(FAKETIME), "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class Reader:
    """Polls every model's Production versions until stopped; tolerates a dead server."""

    def __init__(self, uri: str, names: list[str]) -> None:
        self.uri, self.names, self.most, self.versions_seen = uri, names, 0, 0
        self.least = 10**9  # the fewest versions in Production seen in any one model
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        registry = seed.client(self.uri)
        while not self._stop.is_set():
            try:
                for name in self.names:
                    found = registry.search_model_versions(f"name = '{name}'")
                    serving = sum(1 for v in found if v.current_stage == "Production")
                    self.most, self.least = max(self.most, serving), min(self.least, serving)
                    self.versions_seen = max(self.versions_seen, len(found))
            except Exception:
                time.sleep(0.2)

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
