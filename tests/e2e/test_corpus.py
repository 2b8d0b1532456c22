"""Hostile and broken stages files: each exits 1 fast, names file, line and problem, and writes nothing.

Each file in tests/corpus/ starts with `# expect LINE:COL: fragment`; the huge ones are made here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import seed
from tests.conftest import Server
from tests.e2e.helpers import stagectl
from tests.faultproxy import FaultProxy, writes

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).parents[1] / "corpus"
# Files whose first line cannot carry the expectation.
EXPECT = {"utf16.yaml": "1:1: not valid UTF-8", "empty.yaml": "1:1: the file is empty"}


def _generated() -> dict[str, tuple[bytes, str]]:
    laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    laughs += [f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 9)}]" for i in range(1, 10)]
    return {
        "billion-laughs.yaml": ("\n".join(laughs).encode(), "1:4: anchors and aliases"),
        "ten-megabytes.yaml": (b"apiVersion: stagectl/v1\nmodels: {}\n" + b"#" * 10_000_000, "1:1: larger than 4 MiB"),
        # Refused where libyaml's own limit stops its scan ahead, with the same message as ours.
        "deep-nesting.yaml": (b"apiVersion: stagectl/v1\nmodels: " + b"[" * 5000 + b"]" * 5000 + b"\n",
                              "2:1008: nesting deeper than 20 levels"),
        "deep-flow.yaml": (b"apiVersion: stagectl/v1\nmodels: " + b"[" * 25 + b"]" * 25 + b"\n",
                           "2:28: nesting deeper than 20 levels"),
        "deep-mapping.yaml": (b"apiVersion: stagectl/v1\nmodels:\n" + b"".join(
            b" " * (2 * i) + f"k{i}:\n".encode() for i in range(1, 200)) + b" " * 400 + b"x: 1\n",
            "22:41: nesting deeper than 20 levels"),
        "many-models-one-bad.yaml": (b"apiVersion: stagectl/v1\nmodels:\n" + b"".join(
            f"  m{i}: {{}}\n".encode() for i in range(5000)) + b"  m4999: {}\n", "5003:3: duplicate key 'm4999'"),
    }


def _cases() -> Iterator[tuple[str, bytes, str]]:
    for path in sorted(CORPUS.glob("*.yaml")):
        raw = path.read_bytes()
        first = raw.decode("utf-8", errors="replace").lstrip("\ufeff").split("\n", 1)[0]
        expect = EXPECT.get(path.name) or first.removeprefix("# expect ")
        yield path.name, raw, expect
    for name, (raw, expect) in _generated().items():
        yield name, raw, expect


CASES = list(_cases())


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.fixture(scope="module")
def corpus_model(mlflow_server: Server) -> str:
    seed.make_model(seed.client(mlflow_server.uri), "corpus-fraud", ["Production", "Staging"], aliases={"champion": 1})
    return "corpus-fraud"


@pytest.mark.parametrize(("name", "raw", "expect"), CASES, ids=[c[0] for c in CASES])
def test_hostile_file_exits_1_fast_with_file_line_and_problem(
        name: str, raw: bytes, expect: str, tmp_path: Path, mlflow_server: Server, corpus_model: str) -> None:
    (tmp_path / "stages.yaml").write_bytes(raw)
    registry = seed.client(mlflow_server.uri)
    before = seed.snapshot(registry, [corpus_model], times=True)
    with FaultProxy(mlflow_server.uri) as proxy:
        started = time.monotonic()
        result = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path, timeout=30)
        elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stdout
    position, _, fragment = expect.partition(": ")
    # A file error on stderr; a model the registry lacks is held, and named in the report.
    output = result.stderr + result.stdout
    assert f"stages.yaml:{position}" in output and fragment in output, output
    assert "Traceback" not in result.stderr
    assert elapsed < 10, f"{name} took {elapsed:.1f} s"  # about a second of it is starting Python
    assert writes(proxy) == []  # not the lease either
    assert seed.snapshot(registry, [corpus_model], times=True) == before
