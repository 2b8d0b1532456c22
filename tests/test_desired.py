"""The stages.yaml loader: every problem reported at once, each with its exact line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller import desired
from controller.errors import ConfigError
from controller.model import Position

HEAD = "apiVersion: stagectl/v1\nmodels:\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        desired.parse(text, "stages.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_issue_example_loads() -> None:
    state = desired.parse(HEAD + """\
  fraud-detector:
    production: 2          # one version, or a list of versions
    staging: [3]
    archived: [1]
    aliases:
      champion: 2
  churn-model:
    production: 7
""")
    churn, fraud = state.models
    assert (churn.name, churn.production, churn.staging, churn.archived) == ("churn-model", {"7"}, None, set())
    assert fraud.production == {"2"} and fraud.staging == {"3"} and fraud.archived == {"1"}
    assert fraud.aliases == {"champion": "2"}
    assert fraud.position == Position(3, 3)
    assert fraud.version_positions == {"1": Position(6, 16), "2": Position(4, 17), "3": Position(5, 15)}


def test_empty_list_declares_an_empty_stage_and_absent_key_declares_nothing() -> None:
    (model,) = desired.parse(HEAD + "  m:\n    production: []\n").models
    assert model.production == frozenset() and model.staging is None


@pytest.mark.parametrize(("body", "expected"), [
    ("  m:\n    production: 1.10\n",
     ["stages.yaml:4:17: '1.10' is read by YAML as a decimal number, not a version; "
      "versions are whole numbers (quote it if you mean text)"]),
    ("  m:\n    production: 0755\n",
     ["stages.yaml:4:17: '0755' is read by YAML as the number 493; "
      "write versions as plain digits without leading zeros"]),
    ("  m:\n    production: 2\n    production: 3\n",
     ["stages.yaml:5:5: duplicate key 'production' (first written on line 4)"]),
    ("  m: {}\n  m: {}\n", ["stages.yaml:4:3: duplicate key 'm' (first written on line 3)"]),
    ("  m:\n    production: &v 2\n    staging: *v\n",
     ["stages.yaml:4:17: YAML anchors and aliases (&name, *name) are not allowed; write values out"]),
    ("  m:\n    production: 2\n    staging: [3, 2]\n",
     ["stages.yaml:5:18: models.m: version 2 is listed in both production and staging"]),
    ("  m:\n    archived: [4, 4]\n", ["stages.yaml:4:19: models.m: version 4 is listed twice"]),
    ("  m:\n    prodution: 2\n",
     ["stages.yaml:4:5: models.m: unknown key 'prodution'; did you mean 'production'?"]),
    ("  m:\n    production: -1\n",
     ["stages.yaml:4:17: models.m.production: versions are positive whole numbers, got -1"]),
    ("  m:\n    staging: [1, x]\n",
     ['stages.yaml:4:18: models.m.staging.1: versions are positive whole numbers, got "x"']),
    ("  m:\n    aliases: {Latest: 1}\n",
     ["stages.yaml:4:15: models.m.aliases: 'Latest' is reserved by MLflow "
      "('latest' and v<number> name versions themselves)"]),
    ("  m:\n    aliases: {v2: 1}\n",
     ["stages.yaml:4:15: models.m.aliases: 'v2' is reserved by MLflow "
      "('latest' and v<number> name versions themselves)"]),
    ("  m:\n    aliases: {'my alias': 1}\n",
     ["stages.yaml:4:15: models.m.aliases: invalid name 'my alias': only letters, digits, '_' and '-' are allowed"]),
    ("  yes:\n    production: 1\n", ["stages.yaml:3:3: key 'yes' is read by YAML as a boolean; quote it: '\"yes\"'"]),
    ("  ' ': {}\n", ["stages.yaml:3:3: models: invalid name ' ': model names cannot be blank"]),
    ("  m:\n", ["stages.yaml:3:5: models.m: expected a mapping, got nothing"]),
    ("  m:\n    production: [1\n", ["stages.yaml:5:1: YAML syntax error: did not find expected ',' or ']'"]),
])
def test_malformed_files_name_line_column_and_problem(body: str, expected: list[str]) -> None:
    assert problems(HEAD + body) == expected


def test_all_problems_are_reported_at_once_in_file_order() -> None:
    found = problems("apiVersion: stagectl/v2\nextra: 1\nmodels:\n  m:\n    production: 1.5\n"
                     "    aliases: {latest: 0}\n")
    assert found == [
        'stages.yaml:1:13: apiVersion: must be "stagectl/v1", got "stagectl/v2"',
        "stages.yaml:2:1: unknown key 'extra'; expected one of: apiVersion, owner, registry, defaults, lifecycle, "
        "models",
        "stages.yaml:5:17: '1.5' is read by YAML as a decimal number, not a version; "
        "versions are whole numbers (quote it if you mean text)",
        "stages.yaml:6:15: models.m.aliases: 'latest' is reserved by MLflow "
        "('latest' and v<number> name versions themselves)",
        "stages.yaml:6:23: models.m.aliases.latest: versions are positive whole numbers, got 0",
    ]


def test_missing_required_keys() -> None:
    assert problems("registry: {}\n") == [
        "stages.yaml:1:1: missing required key 'apiVersion'",
        "stages.yaml:1:1: missing required key 'models'",
    ]


def test_an_unparsable_tracking_uri_is_a_problem_not_a_crash() -> None:
    # Found by the fuzzer (tests/fuzz_loader.py): urlsplit raises on this.
    found = problems("apiVersion: stagectl/v1\nregistry:\n  tracking_uri: https://bot:x_uri:0, 1]\nmodels: {}\n")
    assert found == ["stages.yaml:3:17: registry.tracking_uri is not a valid URI: Invalid IPv6 URL"]


def test_credentials_in_the_file_are_refused() -> None:
    found = problems("apiVersion: stagectl/v1\nregistry:\n  tracking_uri: https://u:pw@h\nmodels: {}\n")
    assert found == ["stages.yaml:3:17: registry.tracking_uri holds credentials; set MLFLOW_TRACKING_USERNAME/"
                     "MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN instead"]


@pytest.mark.parametrize(("raw", "expected"), [
    (b"", "stages.yaml:1:1: the file is empty; expected 'apiVersion: stagectl/v1' and 'models:'"),
    (b"\xef\xbb\xbfapiVersion: stagectl/v1\n",
     "stages.yaml:1:1: the file starts with a UTF-8 byte order mark; save it as UTF-8 without BOM"),
    (b"apiVersion: stagectl/v1\nmodels:\n  caf\xe9: {}\n", "stages.yaml:3:6: the file is not valid UTF-8 (byte 0xe9)"),
    (b"apiVersion: stagectl/v1\nmodels: {}\n---\nmodels: {}\n",
     "stages.yaml:3:1: more than one YAML document ('---'); a stages file is one document"),
])
def test_unreadable_bytes(tmp_path: Path, raw: bytes, expected: str) -> None:
    path = tmp_path / "stages.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as caught:
        desired.load(path, "stages.yaml")
    assert [str(p) for p in caught.value.problems] == [expected]


def test_billion_laughs_fails_fast_on_the_first_anchor() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 9)}]" for i in range(1, 10)]
    assert problems("\n".join(lines)) == [
        "stages.yaml:1:4: YAML anchors and aliases (&name, *name) are not allowed; write values out"]


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    found = problems(HEAD + "  m: " + "[" * 3000 + "]" * 3000 + "\n")
    assert len(found) == 1 and found[0].startswith("stages.yaml:3:")
    assert found[0].endswith(f": nesting deeper than {desired.MAX_DEPTH} levels"), found
    assert problems(HEAD + "  m: " + "[" * 25 + "]" * 25 + "\n") == [
        f"stages.yaml:3:{6 + desired.MAX_DEPTH - 2}: nesting deeper than {desired.MAX_DEPTH} levels"]


def test_oversized_file_is_refused_before_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (desired.MAX_BYTES + 1))
    with pytest.raises(ConfigError, match=r"larger than 4 MiB"):
        desired.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"stages\.yaml: file not found"):
        desired.load(tmp_path / "stages.yaml", "stages.yaml")


def test_the_repository_example_is_valid() -> None:
    state = desired.load(Path(__file__).parents[1] / "stages.yaml")
    assert [m.name for m in state.models] == ["fraud-detector"]
