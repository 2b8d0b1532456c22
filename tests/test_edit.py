"""transition-version's editor: only the lines that must change do."""

from __future__ import annotations

import difflib

import pytest

from controller import desired, edit
from controller.errors import ConfigError

FILE = """\
# yaml-language-server: $schema=schemas/stages.schema.json
apiVersion: stagectl/v1   # the format
models:
  # the fraud model, owned by the risk team
  fraud-detector:
    production: 2      # v2 passed shadow evaluation
    staging: [3]
    archived:
      - 1   # the first one
    aliases:
      champion: 2      # serving
  churn-model: {production: 7}
"""


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.mark.parametrize(("args", "expected"), [
    (("fraud-detector", "3", "production"),
     ["-    production: 2      # v2 passed shadow evaluation", "-    staging: [3]",
      "+    production: 3      # v2 passed shadow evaluation", "+    staging: []", "+      - 2"]),
    (("fraud-detector", "4", "staging"),
     ["-    staging: [3]", "+    staging: [4]", "+      - 3"]),
    (("fraud-detector", "1", "production"),
     ["-    production: 2      # v2 passed shadow evaluation", "+    production: 1      # v2 passed shadow evaluation",
      "-      - 1   # the first one", "+      - 2"]),
    (("churn-model", "8", "production"),
     ["-  churn-model: {production: 7}", "+  churn-model: {production: 8, archived: 7}"]),
    (("new-model", "1", "production"), ["+  new-model:", "+    production: 1"]),
])
def test_move_version_changes_only_what_it_must(args: tuple[str, str, str], expected: list[str]) -> None:
    after = edit.move_version(FILE, *args)
    assert sorted(changed_lines(FILE, after)) == sorted(expected)
    model = next(m for m in desired.parse(after).models if m.name == args[0])
    assert args[1] in getattr(model, args[2])


def test_promotion_declares_the_replaced_version_archived_as_apply_would() -> None:
    after = desired.parse(edit.move_version(FILE, "fraud-detector", "3", "production"))
    fraud = next(m for m in after.models if m.name == "fraud-detector")
    assert (fraud.production, fraud.staging, fraud.archived) == ({"3"}, frozenset(), {"1", "2"})


@pytest.mark.parametrize(("alias", "expected"), [
    ("champion", ["-      champion: 2      # serving", "+      champion: 3      # serving"]),
    ("challenger", ["+      challenger: 3"]),
])
def test_move_alias(alias: str, expected: list[str]) -> None:
    assert changed_lines(FILE, edit.move_alias(FILE, "fraud-detector", alias, "3")) == expected


def test_a_key_added_after_a_nested_block_at_the_end_of_the_file_joins_its_model() -> None:
    text = "apiVersion: stagectl/v1\nmodels:\n  m:\n    production: 1\n    aliases:\n      champion: 1\n"
    after = edit.move_version(text, "m", "2", "production")
    assert after == text.replace("production: 1", "production: 2") + "    archived: 1\n"


def test_alias_on_a_flow_style_model() -> None:
    after = edit.move_alias(FILE, "churn-model", "champion", "7")
    assert changed_lines(FILE, after) == ["-  churn-model: {production: 7}",
                                          "+  churn-model: {production: 7, aliases: {champion: 7}}"]


def test_names_that_yaml_would_misread_are_quoted() -> None:
    assert edit.yaml_key("yes") == '"yes"' and edit.yaml_key("1.10") == '"1.10"'
    assert edit.yaml_key("fraud-detector") == "fraud-detector"
    after = edit.move_version(FILE, "on", "1", "production")
    assert any(m.name == "on" for m in desired.parse(after).models)


def test_an_invalid_file_is_refused_not_edited() -> None:
    with pytest.raises(ConfigError, match="duplicate key"):
        edit.move_version(FILE + "  churn-model: {}\n", "fraud-detector", "3", "production")


def test_moving_a_version_into_a_stage_names_the_aliases_left_on_the_versions_it_replaces() -> None:
    assert edit.replaced(FILE, "fraud-detector", "3", "production") == {"champion": "2"}
    assert edit.replaced(FILE, "fraud-detector", "2", "archived") == {"champion": "2"}
    assert edit.replaced(FILE, "fraud-detector", "3", "staging") == {}
    kept = edit.move_version(FILE, "fraud-detector", "3", "production")
    assert "      champion: 2      # serving" in kept
    moved = edit.move_version(FILE, "fraud-detector", "3", "production", move_aliases=True)
    assert changed_lines(kept, moved) == ["-      champion: 2      # serving", "+      champion: 3      # serving"]
