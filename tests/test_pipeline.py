"""The pipeline's shared steps on plain data: limiting a run to some models of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller import desired, planner
from controller.errors import ConfigError
from controller.model import LiveState
from controller.pipeline import declared_staging, forget_history, refuse_misread_saved_plan, select
from tests.factories import A, P, S, live_model
from tests.gitrepo import commit_file, make_repo

FILE = desired.parse("""\
apiVersion: stagectl/v1
models:
  churn-model: {production: 7}
  fraud-detector: {production: 2, aliases: {champion: 2}}
  fraud-scorer: {staging: 4}
""", "stages.yaml")


def test_select_keeps_only_the_named_models_and_says_so() -> None:
    only = select(FILE, ["fraud-detector"])
    assert [m.name for m in only.models] == ["fraud-detector"]
    assert only.only == ("fraud-detector",)
    assert select(FILE, []) is FILE


def test_a_plan_of_a_selection_touches_only_those_models_and_carries_them() -> None:
    live = {m.name: m for m in (live_model("churn-model", {6: P, 7: S}),
                                live_model("fraud-detector", {1: P, 2: S}, {"champion": 1}),
                                live_model("fraud-scorer", {3: S, 4: A}))}
    plan = planner.plan(select(FILE, ["fraud-detector"]), LiveState(live), "u")
    assert plan.models() == ("fraud-detector",) and plan.targets == ("fraud-detector",)
    assert set(planner.plan(FILE, LiveState(live), "u").models()) == {"churn-model", "fraud-detector", "fraud-scorer"}


def test_a_name_the_file_does_not_declare_is_an_error_naming_the_file_with_close_names() -> None:
    with pytest.raises(ConfigError) as raised:
        select(FILE, ["fraud-detectr", "churn-model"])
    assert str(raised.value) == ("stages.yaml: --model 'fraud-detectr': the file declares no such model; "
                                 "did you mean 'fraud-detector' or 'fraud-scorer'?")
    with pytest.raises(ConfigError, match="it declares churn-model, fraud-detector, fraud-scorer"):
        select(FILE, ["zzz"])


def test_a_base_without_the_model_is_not_an_error() -> None:
    assert select(FILE, ["new-model"], strict=False).models == ()


def test_apply_with_a_model_name_where_a_saved_plan_goes_points_at_model(tmp_path: Path) -> None:
    stages = tmp_path / "stages.yaml"
    stages.write_text("apiVersion: stagectl/v1\nmodels:\n  fraud-detector: {production: 2}\n")
    with pytest.raises(ConfigError, match=r"fraud-detector: not a saved plan file, but .*stages.yaml declares a "
                                          r"model of that name; to apply only that model, run: stagectl apply "
                                          r"--model fraud-detector"):
        refuse_misread_saved_plan(Path("fraud-detector"), stages, [])
    refuse_misread_saved_plan(Path("other"), stages, [])  # not a model: the saved plan's own error follows
    with pytest.raises(ConfigError, match="--model cannot limit a saved plan"):
        refuse_misread_saved_plan(stages, stages, ["fraud-detector"])


def test_the_history_says_since_when_a_version_has_been_declared_in_staging(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "repo")

    def at(day: int, staging: str, production: int = 1) -> str:
        monkeypatch.setenv("GIT_COMMITTER_DATE", f"2026-11-{day:02d}T12:00:00+00:00")
        monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-10-01T12:00:00+00:00")  # written long before: not counted
        return commit_file(repo, f"apiVersion: stagectl/v1\nmodels:\n  m: {{production: {production}, "
                                 f"staging: {staging}}}\n", f"day {day}")

    at(1, "[2]")
    at(3, "[]")  # v2 left staging: its earlier time there does not count
    since = at(5, "[2]")
    at(6, "[2, 3]")
    at(7, "[3]", production=2)  # a pull request's commit promotes v2: the run before it counts
    found = declared_staging(repo / "stages.yaml", ["m"])
    assert found["m"]["2"] == (_ms("2026-11-05T12:00:00+00:00"), since)
    assert found["m"]["3"][0] == _ms("2026-11-06T12:00:00+00:00")
    assert declared_staging(tmp_path / "elsewhere" / "stages.yaml", ["m"]) == {}
    # Staged long ago and not since: that time does not count.
    at(8, "[]", production=2)
    at(9, "[]", production=3)
    forget_history()  # the history is read once per run; this is a new one
    assert declared_staging(repo / "stages.yaml", ["m"]).get("m", {}) == {}


def _ms(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp() * 1000)
