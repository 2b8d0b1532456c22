"""Name filters, checked against the very parser MLflow's server runs on them (mlflow/utils/search_utils.py)."""

from __future__ import annotations

import re

import pytest
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils

from controller import filters

NAMES = ["plain", "Bob's \"best\" model", "model\\new", "a\\x27b", "a'b", "ends-with\\", "\\", "'", '"', "x(y), 'z'",
         "😀 fraud", "café", "tab\there", "line\nbreak", "team/fraud", "a:b", "model%1", "model_1", "\\'"]


@pytest.mark.parametrize("parser", [SearchModelUtils, SearchModelVersionUtils])
def test_a_list_of_names_reads_back_as_exactly_those_names(parser: type) -> None:
    chunks = list(filters.in_lists(NAMES * 40))
    assert len(chunks) > 1 and all(len(chunk) < filters.MAX_CHARS + 100 for chunk in chunks)
    values = [value for chunk in chunks for value in parser.parse_search_filter(chunk)[0]["value"]]
    assert values == NAMES * 40


@pytest.mark.parametrize("name", NAMES)
def test_one_name_reads_back_exactly_or_as_a_pattern_that_matches_it(name: str) -> None:
    [condition] = SearchModelVersionUtils.parse_search_filter(filters.equals(name))
    if condition["comparator"] == "=":
        assert condition["value"] == name
    else:  # both quote characters: only LIKE can find it, `_` standing for each of them
        assert "'" in name and '"' in name and condition["comparator"] == "LIKE"
        assert len(condition["value"]) == len(name)
        assert all(p == c or p == "_" for p, c in zip(condition["value"], name, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_a_prefix_parses_as_a_pattern_that_matches_every_name_starting_with_it(name: str) -> None:
    [condition] = SearchModelUtils.parse_search_filter(filters.starting(name[:3]))
    assert condition["comparator"] == "LIKE" and condition["value"].endswith("%")
    pattern = "".join("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in condition["value"])
    assert re.fullmatch(pattern, name, re.DOTALL)
