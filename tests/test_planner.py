from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import planner
from controller.model import DesiredModel, LiveModel, LiveVersion, Policy, Position, SetAlias, Stage, Step, Transition
from tests.factories import A, N, P, S, desired, live, live_model, simulate, want


def brief(step: Step) -> str:
    if isinstance(step, SetAlias):
        return f"{step.model}: alias {step.alias} {step.from_version}>{step.version}"
    text = f"{step.model}: {step.version} {step.from_stage}>{step.to_stage}"
    if step.archive_existing_versions:
        text += " +archive"
    if step.archived_by:
        text += f" by {step.archived_by}"
    return text


CASES = [
    pytest.param(
        live_model(stages={1: P, 2: S}, aliases={"champion": 1}),
        want(production=[2], archived=[1], aliases={"champion": 2}),
        ["m: 1 Production>Archived by 2", "m: 2 Staging>Production +archive", "m: alias champion 1>2"],
        id="the-story-promote-v2-archive-v1-move-champion",
    ),
    pytest.param(
        live_model(stages={1: P, 2: S}, aliases={"champion": 1}),
        want(production=[1], staging=[2], aliases={"champion": 1}),
        [],
        id="in-sync-plans-nothing",
    ),
    pytest.param(
        live_model(stages={1: P, 3: P, 2: N}),
        want(production=[1, 2]),
        ["m: 3 Production>Archived", "m: 2 None>Production"],
        id="a-version-that-stays-keeps-production-served-so-archive-first",
    ),
    pytest.param(
        live_model(stages={1: P, 2: S}),
        want(production=[2], staging=[1]),
        ["m: 1 Production>Archived by 2", "m: 2 Staging>Production +archive", "m: 1 Archived>Staging"],
        id="swap-keeps-exactly-one-in-production",
    ),
    pytest.param(
        live_model(stages={1: P}),
        want(production=[]),
        ["m: 1 Production>Archived"],
        id="empty-list-empties-the-stage",
    ),
    pytest.param(
        live_model(stages={1: P, 2: S, 3: N}),
        want(staging=[3]),
        ["m: 2 Staging>Archived by 3", "m: 3 None>Staging +archive"],
        id="absent-production-key-leaves-production-alone",
    ),
    pytest.param(
        live_model(stages={1: P, 2: P}),
        want(production=[2], staging=[1]),
        ["m: 1 Production>Staging"],
        id="leaving-production-for-staging-when-another-stays",
    ),
    pytest.param(
        live_model(stages={4: N, 5: A}),
        want(archived=[4, 5]),
        ["m: 4 None>Archived"],
        id="declared-archived",
    ),
    pytest.param(
        live_model(stages={1: P, 2: N, 3: N}),
        want(production=[2, 3]),
        ["m: 1 Production>Archived by 2", "m: 2 None>Production +archive", "m: 3 None>Production"],
        id="two-promotions-only-the-first-archives",
    ),
    pytest.param(
        live_model(stages={1: P, 2: S, 3: S, 4: N}),
        want(production=[2], staging=[4], archived=[3]),
        ["m: 1 Production>Archived by 2", "m: 3 Staging>Archived by 4",
         "m: 2 Staging>Production +archive", "m: 4 None>Staging +archive"],
        id="archive-then-move-then-promote-to-staging",
    ),
    pytest.param(
        live_model(stages={1: P, 2: S, 3: N}),
        want(production=[3], staging=[2, 1]),
        ["m: 1 Production>Archived by 3", "m: 3 None>Production +archive", "m: 1 Archived>Staging"],
        id="demoted-version-joins-staging-after-the-promotion",
    ),
    pytest.param(
        live_model(stages={7: A}, aliases={"old": 7}),
        want(aliases={"champion": 7, "old": 7}),
        ["m: alias champion None>7"],
        id="new-alias-and-unchanged-alias",
    ),
    pytest.param(
        live_model(stages={1: P, 9: N}),
        want(production=[1]),
        [],
        id="unmentioned-versions-are-untouched",
    ),
]


@pytest.mark.parametrize(("have", "wanted", "expected"), CASES)
def test_plan_orders_steps(have: LiveModel, wanted: DesiredModel, expected: list[str]) -> None:
    result = planner.plan(desired(wanted), live(have), "sqlite:///x.db")
    assert [brief(s) for s in result.steps] == expected


def test_plan_lists_models_in_name_order() -> None:
    models = [want(name, production=[2]) for name in ("zeta", "alpha", "mid")]
    lives = [live_model(m.name, {1: P, 2: S}) for m in models]
    result = planner.plan(desired(*models), live(*lives), "u")
    assert result.models() == ("alpha", "mid", "zeta")


def test_check_reports_missing_model_and_version_and_unready_version() -> None:
    model = dataclasses.replace(want("m", production=[2], aliases={"champion": 9}),
                                version_positions={"2": Position(4, 17), "9": Position(6, 17)})
    have = LiveModel("m", {"1": LiveVersion("1", N), "2": LiveVersion("2", S, "PENDING_REGISTRATION")}, {})
    problems = planner.check(desired(model, want("ghost")), live(have))
    assert [str(p) for p in problems] == [
        "stages.yaml:1:1: model 'ghost' does not exist in the registry",
        "stages.yaml:4:17: model 'm' version 2 is PENDING_REGISTRATION, not READY",
        "stages.yaml:6:17: model 'm' has no version 9 (it has 1, 2)",
    ]


def test_a_model_the_registry_cannot_take_is_held_alone_and_the_others_are_planned() -> None:
    unready = dataclasses.replace(want("m", staging=[2]), version_positions={"2": Position(4, 14)})
    have = LiveModel("m", {"1": LiveVersion("1", P), "2": LiveVersion("2", N, "PENDING_REGISTRATION")}, {})
    result = planner.plan(desired(unready, want("ghost", production=[1]), want("ok", production=[2])),
                          live(have, live_model("ok", {1: P, 2: S})), "u")
    assert result.held == {"m": "version 2 is PENDING_REGISTRATION, not READY (stages.yaml:4:14)",
                           "ghost": "does not exist in the registry (stages.yaml:1:1)"}
    assert result.models() == ("ok",)


def test_check_suggests_the_registry_name_closest_to_a_misspelt_model() -> None:
    problems = planner.check(desired(want("fraud-detectr")), live(), known=["churn-model", "fraud-detector"])
    assert [p.message for p in problems] == [
        "model 'fraud-detectr' does not exist in the registry; did you mean 'fraud-detector'?"]
    unlike = planner.check(desired(want("zzz")), live(), known=["churn-model", "fraud-detector"])
    assert [p.message for p in unlike] == ["model 'zzz' does not exist in the registry"]
    same_prefix = planner.check(desired(want("tf0908073-ghost")), live(),
                                known=["tf0908073-ready", "tf0908073-other", "tf0908073-m"])
    assert [p.message for p in same_prefix] == ["model 'tf0908073-ghost' does not exist in the registry"]
    swapped = planner.check(desired(want("team-fruad-detector")), live(), known=["team-fraud-detector", "team-x"])
    assert [p.message for p in swapped] == [
        "model 'team-fruad-detector' does not exist in the registry; did you mean 'team-fraud-detector'?"]


# -- properties over random registries and files -------------------------------------------------------

VERSIONS = list(range(1, 7))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[LiveModel, DesiredModel]:
    stages = draw(st.dictionaries(st.sampled_from(VERSIONS), st.sampled_from([P, S, A, N]), min_size=1))
    known = sorted(stages)
    claims = draw(st.dictionaries(st.sampled_from(known), st.sampled_from(["production", "staging", "archived"])))
    declare_production = draw(st.booleans()) or any(c == "production" for c in claims.values())
    declare_staging = draw(st.booleans()) or any(c == "staging" for c in claims.values())
    aliases = draw(st.dictionaries(st.sampled_from(["champion", "challenger"]), st.sampled_from(known)))
    live_aliases = draw(st.dictionaries(st.sampled_from(["champion", "other"]), st.sampled_from(known)))

    def pick(kind: str) -> list[int]:
        return [v for v, c in claims.items() if c == kind]

    wanted = want(
        production=pick("production") if declare_production else None,
        staging=pick("staging") if declare_staging else None,
        archived=pick("archived"),
        aliases=aliases,
    )
    return live_model(stages=stages, aliases=live_aliases), wanted


def _assert_converged(wanted: DesiredModel, before: LiveModel, after: LiveModel) -> None:
    for stage, versions in wanted.declared().items():
        assert after.in_stage(stage) == versions
    for version in wanted.archived:
        assert after.versions[version].stage is A
    mentioned = set(wanted.archived).union(*wanted.declared().values())
    for version, lv in before.versions.items():
        if version not in mentioned and lv.stage not in wanted.declared():
            assert after.versions[version].stage is lv.stage, "an unmentioned version was moved"
    for alias, version in wanted.aliases.items():
        assert after.aliases[alias] == version
    for alias, version in before.aliases.items():
        if alias not in wanted.aliases:
            assert after.aliases[alias] == version, "an unlisted alias was moved"


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_applying_the_plan_reaches_the_file_and_replanning_is_empty(scenario: tuple[LiveModel, DesiredModel]) -> None:
    have, wanted = scenario
    steps = planner.plan_model(wanted, have)
    after = simulate(have, steps)
    _assert_converged(wanted, have, after)
    assert planner.plan_model(wanted, after) == []


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_production_is_never_over_full_nor_emptied_needlessly(scenario: tuple[LiveModel, DesiredModel]) -> None:
    have, wanted = scenario
    counts: list[int] = []
    after = simulate(have, planner.plan_model(wanted, have), watch=counts)
    initial, final = len(have.in_stage(P)), len(after.in_stage(P))
    assert all(c <= max(initial, final) for c in counts), counts
    if initial >= 1 and final >= 1:
        assert all(c >= 1 for c in counts), counts


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.data())
def test_any_prefix_of_the_plan_still_converges(scenario: tuple[LiveModel, DesiredModel], data: st.DataObject) -> None:
    have, wanted = scenario
    steps = planner.plan_model(wanted, have)
    cut = data.draw(st.integers(min_value=0, max_value=len(steps)))
    halfway = simulate(have, steps[:cut])
    after = simulate(halfway, planner.plan_model(wanted, halfway))
    _assert_converged(wanted, have, after)


def test_atomic_promotion_is_only_used_when_the_stage_holds_exactly_the_leavers() -> None:
    # v1 stays in production: archive_existing_versions would archive it too, so it must not be used.
    steps = planner.plan_model(want(production=[1, 2]), live_model(stages={1: P, 3: P, 2: S}))
    promotions = [s for s in steps if isinstance(s, Transition) and s.to_stage is Stage.PRODUCTION]
    assert promotions and not any(s.archive_existing_versions for s in promotions)


# -- gates ------------------------------------------------------------------------------------------------

def _gated(policy: Policy, **kwargs: object) -> DesiredModel:
    return dataclasses.replace(want(**kwargs), policy=policy)  # type: ignore[arg-type]


def test_require_tags_checks_each_version_entering_production() -> None:
    have = LiveModel("m", {"1": LiveVersion("1", P), "2": LiveVersion("2", S, tags={"ok": "yes"}),
                           "3": LiveVersion("3", N, tags={"ok": "no"})}, {})
    plan = planner.plan(desired(_gated(Policy(require_tags={"ok": "yes"}), production=[2, 3])), live(have), "u")
    assert [(c.version, c.ok, c.detail) for c in plan.checks] == [
        ("2", True, "has ok=yes"), ("3", False, "missing ok=yes (has 'no')")]
    assert len(plan.violations) == 1


def test_promote_from_staging_accepts_staging_now_or_declared_before() -> None:
    have = live_model(stages={1: P, 2: S, 3: N, 4: N})
    plan = planner.plan(desired(_gated(Policy(promote_from="staging"), production=[2, 3, 4])), live(have), "u",
                        staged_before={"m": {"3": "origin/main"}})
    assert [(c.version, c.ok, c.detail) for c in plan.checks] == [
        ("2", True, "in Staging now"), ("3", True, "declared in staging at origin/main"),
        ("4", False, "in None, not in Staging now, nor declared in staging before")]


def test_frozen_model_steps_are_held_not_planned() -> None:
    have = live(live_model(stages={1: P, 2: S}))
    plan = planner.plan(desired(_gated(Policy(frozen="INC-1"), production=[2])), have, "u")
    assert plan.steps == () and plan.frozen == {"m": "INC-1"} and len(plan.blocked["m"]) == 2


def test_max_changes_counts_the_whole_plan_and_the_command_line_can_raise_it() -> None:
    state = dataclasses.replace(desired(want("a", production=[]), want("b", production=[])), max_changes=1)
    lives = live(live_model("a", {1: P}), live_model("b", {1: P}))
    assert [c.detail for c in planner.plan(state, lives, "u").violations] == [
        "2 steps exceed max_changes 1 (raise it with --max-changes)"]
    assert planner.plan(state, lives, "u", max_changes=2).violations == ()


# -- drift classification ------------------------------------------------------------------------------------

def test_drift_a_registry_matching_the_file_is_in_sync_whatever_its_tags_say() -> None:
    from controller import drift

    now = want(production=[2])
    tagged_long_ago = LiveModel("m", {"1": LiveVersion("1", A, tags={"stagectl.applied_commit": "c0"}),
                                      "2": LiveVersion("2", P)}, {})
    assert drift.classify(now, tagged_long_ago, [("c1", want(production=[1]))], "c0").kind is drift.Kind.IN_SYNC


def test_drift_a_registry_matching_a_declaration_since_the_last_apply_is_pending() -> None:
    from controller import drift

    live_now = LiveModel("m", {"1": LiveVersion("1", P, tags={"stagectl.applied_commit": "c1"}),
                               "2": LiveVersion("2", S)}, {})
    assert drift.applied_commits(live_now) == {"c1"}
    # c2 accepted the registry as it is (a merged proposal, or an adopted export); c3 asks for more.
    declared = [("c3", want(production=[2])), ("c2", want(production=[1])), ("c1", want(production=[3]))]
    pending = drift.classify(want(production=[2]), live_now, declared, "c1")
    assert pending.kind is drift.Kind.PENDING and not pending.drifted
    assert pending.matches_commit == "c2" and [str(c) for c in pending.pending] == ["production: 1 → 2"]


def test_drift_a_registry_matching_no_declaration_since_the_last_apply_changed_outside_git() -> None:
    from controller import drift

    clicked = LiveModel("m", {"1": LiveVersion("1", A, tags={"stagectl.commit": "c1"}), "2": LiveVersion("2", P)}, {})
    assert drift.applied_commits(clicked) == {"c1"}  # what older versions recorded
    now = want(production=[1])
    drifted = drift.classify(now, clicked, [("c1", now)], "c1")
    assert drifted.kind is drift.Kind.DRIFTED and drifted.drifted
    assert [brief(s) for s in drifted.restore] == ["m: 2 Production>Archived by 1", "m: 1 Archived>Production +archive"]
    assert drift.classify(now, clicked, [("c1", now)], None).kind is drift.Kind.UNKNOWN
    # A declaration naming a version the registry no longer has matches nothing (and does not fail).
    assert drift.classify(now, clicked, [("c0", want(production=[9]))], "c0").kind is drift.Kind.DRIFTED
    assert drift.proposal(now, clicked) == ({"production": ["2"]}, {})


# -- alias warnings ------------------------------------------------------------------------------------------

def test_plan_warns_when_an_alias_is_left_on_a_version_it_archives() -> None:
    state = desired(want(production=[2], archived=[1]))
    lives = live(live_model(stages={1: P, 2: S, 3: N}, aliases={"champion": 1, "shadow": 3, "next": 2}))
    warnings = planner.plan(state, lives, "u").warnings
    assert [(w.alias, w.version, w.stage, w.moved) for w in warnings] == [("champion", "1", A, True),
                                                                         ("shadow", "3", N, False)]
    assert str(warnings[0]).startswith("m: alias champion points at version 1, which will be Archived after this plan")
    moved_along = desired(want(production=[2], archived=[1], aliases={"champion": 2}))
    assert [w.alias for w in planner.plan(moved_along, lives, "u").warnings] == ["shadow"]


def test_a_model_another_file_manages_is_a_violated_owner_gate_unless_adopted() -> None:
    theirs = dataclasses.replace(live_model("m", {1: P, 2: S}), tags={"stagectl.owner": "github.com/a/x:stages.yaml"})
    unowned, ours = live_model("n", {1: P, 2: S}), dataclasses.replace(live_model("o", {1: P, 2: S}),
                                                                       tags={"stagectl.owner": "me"})
    state = desired(want("m", production=[2]), want("n", production=[2]), want("o", production=[2]))
    plan = planner.plan(state, live(theirs, unowned, ours), "u", owner="me")
    assert [(c.gate, c.model, c.ok) for c in plan.violations] == [("owner", "m", False)]
    assert "managed by another stages file: github.com/a/x:stages.yaml" in plan.violations[0].detail
    adopted = planner.plan(state, live(theirs, unowned, ours), "u", owner="me", adopt=frozenset({"m"}))
    assert adopted.violations == () and [(c.gate, c.model, c.detail) for c in adopted.checks] == [
        ("owner", "m", "taken over from github.com/a/x:stages.yaml (--adopt)")]
    in_sync = planner.plan(desired(want("m", production=[1])), live(theirs), "u", owner="me")
    assert in_sync.checks == ()  # nothing to change: nothing to refuse
