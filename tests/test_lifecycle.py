"""Lifecycle modes on plain data: what each mode plans, in which order, and what readers see."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import changes, edit, lifecycle, planner, savedplan
from controller.desired import parse as desired_parse
from controller.errors import ConfigError
from controller.model import (
    ApplyResult,
    DeleteAlias,
    Lifecycle,
    LiveModel,
    LiveVersion,
    MarkArchived,
    Mode,
    Outcome,
    Plan,
    Policy,
    SetAlias,
    SetLifecycle,
    Stage,
    Status,
    Step,
    Transition,
)
from controller.reporters.json import render_plan, render_result
from tests.factories import A, N, P, S, desired, live, simulate, want
from tests.gitrepo import commit_file, git, make_repo

ROOT = Path(__file__).resolve().parent.parent
STAGECTL = str(Path(sys.executable).parent / "stagectl")
ALIASES = Lifecycle(Mode.ALIASES, "champion", "challenger")
BOTH = Lifecycle(Mode.BOTH, "champion", "challenger")


def model(stages: dict[int, Stage], aliases: dict[str, int] | None = None, archived: tuple[int, ...] = (),
          recorded: Lifecycle | None = None) -> LiveModel:
    versions = {str(v): LiveVersion(str(v), s, tags={lifecycle.ARCHIVED_TAG: "true"} if v in archived else {})
                for v, s in stages.items()}
    tags = {lifecycle.LIFECYCLE_TAG: lifecycle.tag_value(recorded)} if recorded else {}
    return LiveModel("m", versions, {a: str(v) for a, v in (aliases or {}).items()}, tags)


def brief(step: Step) -> str:
    if isinstance(step, SetAlias):
        return f"alias {step.alias} {step.from_version}>{step.version}"
    if isinstance(step, DeleteAlias):
        return f"unalias {step.alias} from {step.version}"
    if isinstance(step, MarkArchived):
        return f"{'mark' if step.archived else 'unmark'} {step.version}"
    if isinstance(step, SetLifecycle):
        return f"record {step.lifecycle.mode}"
    extra = " +archive" if step.archive_existing_versions else f" by {step.archived_by}" if step.archived_by else ""
    return f"{step.version} {step.from_stage}>{step.to_stage}{extra}"


def steps(have: LiveModel, mode: Lifecycle, **declared: object) -> list[str]:
    return [brief(s) for s in planner.plan_model(dataclasses.replace(want(**declared), lifecycle=mode), have)]  # type: ignore[arg-type]


def test_moving_to_aliases_sets_the_aliases_records_then_takes_versions_out_of_the_stages() -> None:
    have = model({1: P, 2: S, 3: A})
    assert steps(have, ALIASES, production=[1], staging=[2], archived=[3]) == [
        "alias champion None>1", "alias challenger None>2", "record aliases", "mark 3",
        "1 Production>None", "2 Staging>None"]


def test_aliases_mode_promotes_by_moving_the_alias_then_marks_the_old_version_and_calls_no_stage_api() -> None:
    have = model({1: N, 2: N}, {"champion": 1, "challenger": 2}, recorded=ALIASES)
    planned = planner.plan_model(dataclasses.replace(want(production=[2], archived=[1]), lifecycle=ALIASES), have)
    assert [brief(s) for s in planned] == ["alias champion 1>2", "mark 1"]
    assert not any(isinstance(s, Transition) for s in planned)


def test_a_version_the_production_alias_leaves_is_archived_even_when_not_listed() -> None:
    have = model({1: N, 2: N}, {"champion": 1}, recorded=ALIASES)
    assert steps(have, ALIASES, production=[2]) == ["alias champion 1>2", "mark 1"]


def test_a_version_promoted_from_staging_keeps_the_staging_alias_when_staging_is_not_declared() -> None:
    have = model({1: N, 2: N}, {"champion": 1, "challenger": 2}, recorded=ALIASES)
    assert steps(have, ALIASES, production=[2]) == ["alias champion 1>2", "mark 1"]
    # ...and is not archived when staging then moves on: it is still in production
    have = model({1: N, 2: N, 3: N}, {"champion": 2, "challenger": 2}, recorded=ALIASES)
    assert steps(have, ALIASES, staging=[3]) == ["alias challenger 2>3"]


def test_moving_to_both_plans_only_the_aliases_and_the_record() -> None:
    have = model({1: P, 2: S, 3: A})
    assert steps(have, BOTH, production=[1], staging=[2], archived=[3]) == [
        "alias champion None>1", "alias challenger None>2", "record both"]


def test_both_mode_moves_the_production_alias_before_the_promotion_archives_the_old_version() -> None:
    have = model({1: P, 2: S}, {"champion": 1, "challenger": 2}, recorded=BOTH)
    assert steps(have, BOTH, production=[2], archived=[1]) == [
        "alias champion 1>2", "1 Production>Archived by 2", "2 Staging>Production +archive"]


def test_going_back_to_stages_only_records_it() -> None:
    have = model({1: P, 2: S}, {"champion": 1, "challenger": 2}, recorded=BOTH)
    assert steps(have, Lifecycle(), production=[1], staging=[2]) == ["record stages"]
    assert steps(model({1: P}), Lifecycle(), production=[1]) == []  # nothing recorded: nothing to record


def test_an_emptied_staging_removes_the_staging_alias_and_archives_its_version() -> None:
    have = model({1: N, 2: N}, {"champion": 1, "challenger": 2}, recorded=ALIASES)
    assert steps(have, ALIASES, production=[1], staging=[]) == ["unalias challenger from 2", "mark 2"]  # as [] archives


def test_an_archived_version_loses_a_lifecycle_alias_left_on_it() -> None:
    have = model({1: N, 2: N}, {"champion": 1, "challenger": 2}, recorded=ALIASES)
    assert steps(have, ALIASES, production=[1], archived=[2]) == ["unalias challenger from 2", "mark 2"]


def test_a_version_back_in_service_loses_its_archived_tag_first() -> None:
    have = model({1: N, 2: N}, {"champion": 2}, archived=(1,), recorded=ALIASES)
    assert steps(have, ALIASES, production=[1], archived=[2]) == ["unmark 1", "alias champion 2>1", "mark 2"]


def test_archiving_the_production_alias_version_without_a_new_production_holds_the_model() -> None:
    have = model({1: N, 2: N}, {"champion": 1}, recorded=ALIASES)
    mine = dataclasses.replace(want(archived=[1]), lifecycle=ALIASES)
    plan = planner.plan(desired(mine), live(have), "uri")
    assert plan.steps == () and "production alias 'champion'" in plan.held["m"]


def test_gates_apply_to_promotions_by_alias() -> None:
    have = model({1: N, 2: N, 3: N}, {"champion": 1, "challenger": 2}, recorded=ALIASES)
    policy = Policy(require_tags={"validated": "true"}, promote_from="staging")
    checks = {}
    for version in (2, 3):
        mine = dataclasses.replace(want(production=[version]), lifecycle=ALIASES, policy=policy)
        plan = planner.plan(desired(mine), live(have), "uri")
        checks[version] = [(c.gate, c.ok, c.detail) for c in plan.checks]
    assert checks[2] == [("require_tags", False, "missing validated=true"),
                         ("promote_from", True, "in the staging alias 'challenger' now")]
    assert checks[3][1] == ("promote_from", False,
                            "not in the staging alias 'challenger' now, nor declared in staging before")


def test_readers_follow_the_recorded_lifecycle() -> None:
    have = model({1: P, 2: N, 3: A}, {"champion": 2}, archived=(1,), recorded=ALIASES)
    assert lifecycle.versions_in(have, Stage.PRODUCTION) == {"2"}
    assert lifecycle.versions_in(have, Stage.ARCHIVED) == {"1"}
    stages = dataclasses.replace(have, tags={})
    assert lifecycle.versions_in(stages, Stage.PRODUCTION) == {"1"}
    assert lifecycle.versions_in(stages, Stage.ARCHIVED) == {"1", "3"}
    unknown = dataclasses.replace(have, tags={lifecycle.LIFECYCLE_TAG: "quantum; production=x"})
    assert lifecycle.versions_in(unknown, Stage.PRODUCTION) == {"1"}  # unreadable: stages, until rewritten


@settings(max_examples=300, deadline=None)
@given(
    stages=st.lists(st.sampled_from([N, S, P, A]), min_size=1, max_size=5),
    champion=st.one_of(st.none(), st.integers(1, 5)),
    challenger=st.one_of(st.none(), st.integers(1, 5)),
    production=st.integers(1, 5),
    staging=st.one_of(st.none(), st.integers(0, 5)),
    archive=st.sets(st.integers(1, 5), max_size=3),
    mode=st.sampled_from([ALIASES, BOTH]),
    recorded=st.sampled_from([None, ALIASES, BOTH]),
)
def test_every_step_keeps_the_production_alias_on_a_version_the_file_keeps_and_one_apply_converges(
        stages: list[Stage], champion: int | None, challenger: int | None, production: int, staging: int | None,
        archive: set[int], mode: Lifecycle, recorded: Lifecycle | None) -> None:
    count = len(stages)
    production = min(production, count)
    aliases = {k: v for k, v in (("champion", champion), ("challenger", challenger)) if v and v <= count}
    have = model(dict(enumerate(stages, 1)), aliases, recorded=recorded)
    staged = None if staging is None else [] if staging == 0 or staging > count else [staging]
    archived = {v for v in archive if v <= count} - {production} - set(staged or [])
    mine = dataclasses.replace(want(production=[production], staging=staged, archived=archived), lifecycle=mode)
    plan = planner.plan(desired(mine), live(have), "uri")
    if plan.held:
        return
    state = have
    for step in plan.steps:
        state = simulate(state, [step])
        if "champion" in aliases or any(isinstance(s, SetAlias) for s in plan.steps[:1]):
            target = state.aliases.get("champion")
            assert target is not None, "the production alias points at nothing"
            assert target not in {str(v) for v in archived}, "the production alias points at an archived version"
    assert state.aliases["champion"] == str(production)
    assert lifecycle.versions_in(state, Stage.PRODUCTION) == {str(production)}
    assert not {str(v) for v in archived} - lifecycle.versions_in(state, Stage.ARCHIVED)
    if mode.mode is Mode.ALIASES:
        assert not state.in_stage(P) and not state.in_stage(S)
    assert planner.plan(desired(mine), live(state), "uri").steps == ()


@pytest.mark.parametrize("mode", [ALIASES, BOTH])
def test_a_user_alias_on_a_version_the_plan_archives_is_warned_about(mode: Lifecycle) -> None:
    have = model({1: P, 2: S}, {"champion": 1, "old": 1}, recorded=mode)
    mine = dataclasses.replace(want(production=[2], archived=[1]), lifecycle=mode)
    plan = planner.plan(desired(mine), live(have), "uri")
    assert [(w.alias, w.version) for w in plan.warnings] == [("old", "1")]


def test_the_loader_reads_the_file_lifecycle_under_each_models_own_keys() -> None:
    state = desired_parse("""\
apiVersion: stagectl/v1
lifecycle:
  mode: aliases
  production_alias: champion
  staging_alias: challenger
models:
  a:
    production: 2
  b:
    lifecycle: both
    production: [3]
  c:
    lifecycle: {mode: stages, staging_alias: next}
    production: [1, 2]
""")
    got = {m.name: m.lifecycle for m in state.models}
    assert got == {"a": ALIASES, "b": BOTH, "c": Lifecycle(Mode.STAGES, "champion", "next")}
    assert desired_parse("apiVersion: stagectl/v1\nlifecycle: aliases\nmodels: {m: {production: 1}}\n").models[
        0].lifecycle == Lifecycle(Mode.ALIASES)


def test_what_an_alias_cannot_mean_is_refused_at_its_line() -> None:
    with pytest.raises(ConfigError) as e:
        desired_parse("""\
apiVersion: stagectl/v1
lifecycle: {mode: aliases, production_alias: champion}
models:
  two:
    production: [1, 2]
  none:
    production: []
  clash:
    production: 1
    aliases: {champion: 1}
  same:
    lifecycle: {staging_alias: champion}
  reserved:
    lifecycle: {mode: both, staging_alias: latest}
  unknown:
    lifecycle: {mode: canary}
""")
    assert [str(p) for p in e.value.problems] == [
        "stages.yaml:5:17: models.two.production: with aliases in the file's lifecycle, production names one "
        "version: its alias 'champion' points at one",
        "stages.yaml:7:17: models.none.production: with aliases in the file's lifecycle, production cannot be "
        "empty: the alias would point at nothing",
        "stages.yaml:10:15: models.clash.aliases: 'champion' is the lifecycle's production alias, "
        "set from 'production:'; remove it from aliases",
        "stages.yaml:12:16: models.same: its production and staging aliases are both 'champion'; they must differ",
        "stages.yaml:14:44: models.reserved.lifecycle.staging_alias: 'latest' is reserved by MLflow "
        "('latest' and v<number> name versions themselves)",
        "stages.yaml:16:23: models.unknown.lifecycle.mode: expected one of stages, aliases, both, got \"canary\"",
    ]


def test_migrating_the_file_rewrites_only_the_lifecycle_span() -> None:
    text = "# head\napiVersion: stagectl/v1  # keep\nmodels:\n  m:\n    production: 1   # reviewed\n"
    both = edit.set_lifecycle(text, "both")
    assert both == text.replace("models:\n", "lifecycle: both\nmodels:\n", 1)
    aliases = edit.set_lifecycle(both, "aliases", production_alias="champion")
    assert aliases == both.replace("lifecycle: both", "lifecycle: {mode: aliases, production_alias: champion}")
    mapping = text.replace("models:", "lifecycle:\n  mode: both   # step 1\n  staging_alias: next\nmodels:")
    assert edit.set_lifecycle(mapping, "aliases") == mapping.replace("mode: both", "mode: aliases")
    with pytest.raises(ConfigError, match="production names one version"):
        edit.set_lifecycle(text.replace("production: 1", "production: [1, 2]"), "both")


def test_a_change_of_lifecycle_is_a_declared_change_and_the_default_is_none() -> None:
    before = desired_parse("apiVersion: stagectl/v1\nmodels: {m: {production: 1}}\n")
    after = desired_parse("apiVersion: stagectl/v1\nlifecycle: {mode: both, production_alias: champion}\n"
                          "models: {m: {production: 1}}\n")
    assert [str(c) for c in changes.diff(before, after)] == [
        "lifecycle: — → both (production alias champion, staging alias staging)"]
    assert changes.diff(before, before) == ()


def test_the_new_steps_keep_their_meaning_through_json_and_match_the_schemas() -> None:
    steps: list[Step] = [DeleteAlias("m", "challenger", "2"), MarkArchived("m", "1"), MarkArchived("m", "3", False),
                         SetLifecycle("m", ALIASES, BOTH), SetLifecycle("m", BOTH)]
    plan = Plan("uri", tuple(steps))
    data = json.loads(render_plan(plan))
    jsonschema.validate(data, json.loads((ROOT / "schemas/plan.schema.json").read_text()))
    assert tuple(savedplan._step(s) for s in data["steps"]) == plan.steps
    result = ApplyResult("uri", tuple(Outcome(s, Status.APPLIED) for s in steps))
    jsonschema.validate(json.loads(render_result(result)), json.loads((ROOT / "schemas/apply.schema.json").read_text()))


def test_with_stages_the_alias_names_are_not_recorded_again() -> None:
    named = Lifecycle(Mode.STAGES, "champion", "challenger")
    assert steps(model({1: P}, recorded=Lifecycle()), named, production=[1]) == []
    assert steps(model({1: P}), named, production=[1]) == []


def test_migrate_with_branch_commits_only_the_lifecycle_line_on_a_new_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    text = "apiVersion: stagectl/v1\nmodels:\n  m:\n    production: 1   # reviewed\n"
    commit_file(repo, text, "Manage m")
    done = subprocess.run([STAGECTL, "migrate", "--to", "both", "--branch", "lifecycle-both"], cwd=repo,
                          capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    committed = git(repo, "show", "lifecycle-both:stages.yaml")
    assert committed == text.replace("models:", "lifecycle: both\nmodels:").strip()
    assert git(repo, "log", "-1", "--format=%s", "lifecycle-both") == "Move the lifecycle to both"
    assert "stagectl migrate --to aliases" in done.stderr  # what the next pull request is
    again = subprocess.run([STAGECTL, "migrate", "--to", "aliases", "--production-alias", "latest"], cwd=repo,
                           capture_output=True, text=True)
    assert again.returncode == 1 and "'latest' is reserved by MLflow" in again.stderr
    assert "--production-alias and --staging-alias choose other names" in again.stderr
