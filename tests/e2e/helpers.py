"""Run the real stagectl command as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

STAGECTL = str(Path(sys.executable).parent / "stagectl")


def stagectl(*args: str, cwd: Path, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STAGECTL_"))}
    base["NO_COLOR"] = "1"
    return subprocess.run([STAGECTL, *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
