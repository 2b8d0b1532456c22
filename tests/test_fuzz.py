"""A short coverage-guided fuzz run of the loader (tests/fuzz_loader.py): no crash but clean errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_fuzzing_the_loader_finds_no_crash(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for path in [*ROOT.glob("tests/corpus/*.yaml"), ROOT / "stages.yaml"]:
        shutil.copy(path, seeds)
    runs = 300_000 if request.config.getoption("--slow") else 30_000
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests/fuzz_loader.py"), f"-runs={runs}", "-max_len=8192", "-seed=1",
         f"-artifact_prefix={tmp_path}/", str(seeds)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Done {runs} runs" in result.stderr
    assert not list(tmp_path.glob("crash-*"))
