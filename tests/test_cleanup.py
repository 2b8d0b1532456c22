from __future__ import annotations

import pytest

from controller.cleanup import candidates, parse_duration
from controller.model import LiveModel, LiveState, LiveVersion, Stage
from tests.factories import desired, want

DAY_MS = 86_400_000
NOW = 1_000 * DAY_MS


def version(v: int, stage: Stage, idle_days: int) -> LiveVersion:
    return LiveVersion(str(v), stage, run_id=f"run{v}", created_ms=0, updated_ms=NOW - idle_days * DAY_MS)


def test_candidates_are_old_archived_unaliased_and_unmentioned() -> None:
    live = LiveState({"m": LiveModel("m", {
        "1": version(1, Stage.ARCHIVED, 200),   # candidate
        "2": version(2, Stage.ARCHIVED, 200),   # an alias points at it
        "3": version(3, Stage.ARCHIVED, 200),   # the file mentions it
        "4": version(4, Stage.ARCHIVED, 10),    # recent
        "5": version(5, Stage.NONE, 200),       # not archived
        "10": version(10, Stage.ARCHIVED, 91),  # candidate, sorted as a number
    }, {"rollback": "2"})})
    found = candidates(live, desired(want("m", archived=[3])), NOW, 90 * 86400)
    assert [(c.model, c.version, c.run_id) for c in found] == [("m", "1", "run1"), ("m", "10", "run10")]
    assert [c.version for c in candidates(live, None, NOW, 0)] == ["1", "3", "4", "10"]


@pytest.mark.parametrize(("text", "seconds"), [("90d", 90 * 86400), ("12h", 43200), ("30m", 1800), ("45s", 45),
                                                ("2w", 1209600), ("0s", 0)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["90", "d", "-1d", "1.5d", "90 days"])
def test_parse_duration_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
