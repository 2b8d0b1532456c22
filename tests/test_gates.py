"""Metric and soak gates on plain data: MLflow's MetricThreshold semantics, with the numbers in each check."""

from __future__ import annotations

import dataclasses

import pytest

from controller import gates, planner
from controller.model import DesiredModel, LiveModel, LiveVersion, MetricGate, Policy, Stage
from tests.factories import N, P, S, desired, live, want

DAY_MS = 86_400_000


def model(stages: dict[int, Stage], tags: dict[int, dict[str, str]] | None = None, updated_ms: int = 0) -> LiveModel:
    return LiveModel("m", {str(v): LiveVersion(str(v), s, run_id=f"run{v}", updated_ms=updated_ms,
                                               tags=(tags or {}).get(v, {})) for v, s in stages.items()}, {})


def checks(have: LiveModel, promote: int, policy: Policy, metrics: dict[str, dict[str, float]],
           now_ms: int = 0) -> list[tuple[str, bool, str]]:
    mine: DesiredModel = dataclasses.replace(want(production=[promote]), policy=policy)
    plan = planner.plan(desired(mine), live(have), "uri", evidence=gates.Evidence(metrics, now_ms))
    return [(c.gate, c.ok, c.detail) for c in plan.checks]


AUC = Policy(metrics={"val_auc": MetricGate(threshold=0.92, min_absolute_change=0.005)})


@pytest.mark.parametrize(("candidate", "ok", "detail"), [
    (0.94, True, "val_auc 0.94; >= 0.92 ok; production v1 0.93, change +0.01; needs +0.005 ok"),
    (0.933, False, "val_auc 0.933; >= 0.92 ok; production v1 0.93, change +0.003; needs +0.005 FAILED"),
    (0.91, False, "val_auc 0.91; >= 0.92 FAILED; production v1 0.93, change -0.02; needs +0.005 FAILED"),
])
def test_a_metric_gate_checks_the_threshold_and_the_change_from_production(candidate: float, ok: bool,
                                                                          detail: str) -> None:
    found = checks(model({1: P, 2: S}), 2, AUC, {"run1": {"val_auc": 0.93}, "run2": {"val_auc": candidate}})
    assert found == [("metrics", ok, detail)]


def test_lower_is_better_and_relative_change_follow_mlflow() -> None:
    policy = Policy(metrics={"latency_ms": MetricGate(threshold=40, min_relative_change=0.1, greater_is_better=False)})
    metrics = {"run1": {"latency_ms": 30.0}, "run2": {"latency_ms": 26.0}}
    assert checks(model({1: P, 2: S}), 2, policy, metrics) == [
        ("metrics", True, "latency_ms 26; <= 40 ok; production v1 30, change -4; needs 10.0% of 30 ok")]
    metrics["run2"]["latency_ms"] = 28.0
    assert checks(model({1: P, 2: S}), 2, policy, metrics)[0][1] is False


def test_a_missing_metric_fails_and_no_production_skips_the_change_with_a_note() -> None:
    assert checks(model({1: N, 2: S}), 2, AUC, {"run2": {}}) == [("metrics", False, "val_auc: missing on run run2")]
    assert checks(model({1: N, 2: S}), 2, AUC, {"run2": {"val_auc": 0.95}}) == [
        ("metrics", True, "val_auc 0.95; >= 0.92 ok; change not checked: no version in production now")]


def test_soak_counts_from_the_entry_stagectl_recorded_not_from_the_last_update() -> None:
    policy = Policy(soak=86_400)
    entered = {2: {gates.STAGED_TAG: gates.staged_at(10 * DAY_MS)}}
    # A tag written an hour ago moved the version's last update; the recorded entry still counts.
    have = model({1: P, 2: S}, entered, updated_ms=11 * DAY_MS - 3_600_000)
    assert checks(have, 2, policy, {}, now_ms=11 * DAY_MS) == [
        ("soak", True, "in staging since 1970-01-11T00:00:00Z (recorded by stagectl): 1d of 1d")]
    assert checks(have, 2, policy, {}, now_ms=10 * DAY_MS + 3_600_000) == [
        ("soak", False, "in staging since 1970-01-11T00:00:00Z (recorded by stagectl): 1h of 1d; ready in 23h")]


def test_soak_without_a_recorded_entry_says_what_it_counts_from() -> None:
    have = model({1: P, 2: S}, updated_ms=10 * DAY_MS)
    found = checks(have, 2, Policy(soak=3_600), {}, now_ms=10 * DAY_MS + 7_200_000)
    assert found == [("soak", True, "in staging since 1970-01-11T00:00:00Z at the latest (the registry's last "
                                    "update: stagectl did not record its entry): 2h of 1h")]
    assert checks(model({1: P, 2: N}), 2, Policy(soak=60), {}, now_ms=DAY_MS)[0][:2] == ("soak", False)


def test_soak_without_a_recorded_entry_counts_from_the_git_history_when_it_has_one() -> None:
    # A tag written today moved the last update; the file has declared v2 in staging for three days.
    have = model({1: P, 2: S}, updated_ms=10 * DAY_MS)
    mine = dataclasses.replace(want(production=[2]), policy=Policy(soak=86_400))
    evidence = gates.Evidence(now_ms=10 * DAY_MS + 60_000, declared_staging={"m": {"2": (7 * DAY_MS, "abc1234def")}})
    (check,) = planner.plan(desired(mine), live(have), "uri", evidence=evidence).checks
    assert (check.ok, check.detail) == (True, "in staging since 1970-01-08T00:00:00Z (declared there by commit "
                                              "abc1234, in the file's git history: stagectl did not record its "
                                              "entry): 3d 1m of 1d")
