"""Fuzz the stages.yaml loader with atheris: any outcome but a value or a clean ConfigError is a crash.

    python tests/fuzz_loader.py -runs=20000 [corpus dirs...]
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from controller import desired
    from controller.errors import ConfigError


def test_one_input(data: bytes) -> None:
    try:
        desired.parse_bytes(data)
    except ConfigError as e:
        for problem in e.problems:  # every problem must render with its position
            assert str(problem).startswith("stages.yaml")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
