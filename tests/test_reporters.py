"""Reporters: hand-built plans and results, exact expected output."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

import controller
from controller import github
from controller.changes import Change, Review
from controller.errors import Problem
from controller.model import ApplyResult, Outcome, Plan, SetAlias, Stage, Status, Step, Transition
from controller.reporters import json as json_report
from controller.reporters import markdown, text

P, S, A, N = Stage.PRODUCTION, Stage.STAGING, Stage.ARCHIVED, Stage.NONE
URI = "http://127.0.0.1:5000"
STEPS = (
    Transition("churn", "6", P, A),
    Transition("churn", "7", N, S),
    Transition("fraud-detector", "1", P, A, archived_by="2"),
    Transition("fraud-detector", "2", S, P, archive_existing_versions=True),
    SetAlias("fraud-detector", "champion", "2", "1"),
    SetAlias("fraud-detector", "challenger", "3", None),
)
PLAN = Plan(URI, STEPS)
RESULT = ApplyResult(URI, (
    Outcome(STEPS[0], Status.APPLIED),
    Outcome(STEPS[1], Status.FAILED, "registry answered PERMISSION_DENIED: no | way"),
    Outcome(STEPS[2], Status.APPLIED),
    Outcome(STEPS[3], Status.APPLIED),
    Outcome(STEPS[4], Status.APPLIED),
    Outcome(STEPS[5], Status.APPLIED),
))


def test_text_plan() -> None:
    assert text.render_plan(PLAN, "stages.yaml") == """\
Registry: http://127.0.0.1:5000

churn
    1. archive version 6: Production → Archived
    2. stage   version 7: None → Staging

fraud-detector
    3. archive version 1: Production → Archived  (atomic with step 4)
    4. promote version 2: Staging → Production  (atomic: archive_existing_versions)
    5. alias   champion: version 1 → 2
    6. alias   challenger: version (none) → 3

Plan: 6 changes to 2 models (4 transitions, 2 alias moves).
"""


def test_text_plan_in_sync_is_one_line() -> None:
    assert text.render_plan(Plan(URI, ()), "stages.yaml") == (
        "No changes: the registry at http://127.0.0.1:5000 matches stages.yaml.\n")


def test_text_colours_only_when_asked() -> None:
    assert "\033[" not in text.render_plan(PLAN, "stages.yaml")
    coloured = text.render_plan(PLAN, "stages.yaml", color=True)
    assert "\033[31marchive \033[0m" in coloured and "\033[1mchurn\033[0m" in coloured


def test_text_result() -> None:
    assert text.render_result(RESULT) == """\
Registry: http://127.0.0.1:5000

churn
    1. applied  archive version 6: Production → Archived
    2. failed   stage   version 7: None → Staging
       registry answered PERMISSION_DENIED: no | way

fraud-detector
    3. applied  archive version 1: Production → Archived  (atomic with step 4)
    4. applied  promote version 2: Staging → Production  (atomic: archive_existing_versions)
    5. applied  alias   champion: version 1 → 2
    6. applied  alias   challenger: version (none) → 3

Apply FAILED: 5 applied, 1 failed, 0 skipped.
"""


def test_progress_line() -> None:
    line = text.render_outcome(RESULT.outcomes[1], 2, 6)
    assert line == ("[2/6] churn: stage version 7: None → Staging ... failed: "
                    "registry answered PERMISSION_DENIED: no | way")


def test_markdown_plan() -> None:
    assert markdown.render_plan(PLAN, "stages.yaml") == """\
### stagectl plan: 6 changes to 2 models (4 transitions, 2 alias moves)

Registry: `http://127.0.0.1:5000`

| # | Model | Change | Note |
|--:|---|---|---|
| 1 | churn | archive version 6: Production → Archived |  |
| 2 | churn | stage version 7: None → Staging |  |
| 3 | fraud-detector | archive version 1: Production → Archived | atomic with step 4 |
| 4 | fraud-detector | promote version 2: Staging → Production | atomic: archive_existing_versions |
| 5 | fraud-detector | alias champion: version 1 → 2 |  |
| 6 | fraud-detector | alias challenger: version (none) → 3 |  |
"""


def test_markdown_result_escapes_pipes() -> None:
    rendered = markdown.render_result(RESULT)
    assert rendered.startswith("### stagectl apply FAILED: 5 applied, 1 failed, 0 skipped\n")
    assert "| 2 | churn | stage version 7: None → Staging |  | failed: " \
           "registry answered PERMISSION_DENIED: no \\| way |" in rendered


def test_json_plan_is_stable_and_matches_its_schema() -> None:
    data = json.loads(json_report.render_plan(PLAN))
    schema = json.loads((Path(__file__).parents[1] / "schemas/plan.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(data, schema)
    assert data["steps"][2:5] == [
        {"model": "fraud-detector", "action": "transition", "version": "1", "from_stage": "Production",
         "to_stage": "Archived", "archived_by": "2"},
        {"model": "fraud-detector", "action": "transition", "version": "2", "from_stage": "Staging",
         "to_stage": "Production", "archive_existing_versions": True},
        {"model": "fraud-detector", "action": "set_alias", "alias": "champion", "version": "2",
         "from_version": "1"},
    ]
    assert list(data) == ["format_version", "stagectl_version", "tracking_uri", "changes", "steps", "partial"]
    assert data["format_version"] == 2 and data["partial"] is False and data["changes"] == len(data["steps"])
    assert data["stagectl_version"] == controller.__version__


def test_json_result_carries_each_outcome() -> None:
    data = json.loads(json_report.render_result(RESULT))
    assert data["ok"] is False
    assert [(s["status"], s["error"]) for s in data["steps"]][:2] == [
        ("applied", None), ("failed", "registry answered PERMISSION_DENIED: no | way")]


def _review(steps: tuple[Step, ...], changes: int, drift: tuple[Step, ...] = ()) -> Review:
    listed = tuple(Change(f"model-{i:05d}", "production", ("1",), ("2",)) for i in range(changes))
    return Review("origin/main", listed, Plan(URI, steps), drift)


def test_markdown_review_is_one_sticky_comment_with_summary_first() -> None:
    text = markdown.render_review(_review(STEPS[2:5], 1, drift=STEPS[:1]), "stages.yaml")
    lines = text.splitlines()
    assert lines[0] == "<!-- stagectl:plan -->"
    assert lines[1] == "### stagectl plan: 3 changes to 1 model (2 transitions, 1 alias move)"
    assert "> [!WARNING]" in lines
    assert "<details><summary>Change under review: 1 declared change to 1 model</summary>" in lines
    assert "| model-00000 | production: 1 → 2 |" in lines
    assert "<details open><summary>Registry steps when this merges: 3</summary>" in lines


def test_markdown_review_stays_under_githubs_comment_limit() -> None:
    steps = tuple(Transition(f"model-{i:05d}", "2", S, P) for i in range(5000))
    text = markdown.render_review(_review(steps, 5000), "stages.yaml")
    assert len(text) < markdown.LIMIT
    assert text.startswith("<!-- stagectl:plan -->\n### stagectl plan: 5000 changes to 5000 models")
    assert "_Showing " in text and "of 5000 rows" in text


def test_github_annotations_escape_workflow_command_syntax() -> None:
    problems = [Problem("dir,x/stages.yaml", "bad: 100%\nsecond line", 3, 7), Problem("s.yaml", "no file")]
    assert github.error_annotations(problems) == (
        "::error file=dir%2Cx/stages.yaml,line=3,col=7::bad: 100%25%0Asecond line\n"
        "::error file=s.yaml::no file\n")


def test_the_job_summary_is_scrubbed_like_stdout(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    leaky = "unexpected RuntimeError: {'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='} tok-known-5521"
    github.write_summary(lambda: leaky, ("tok-known-5521",), environ=env)
    written = summary.read_text()
    assert "dXNlcjpwYXNzd29yZA==" not in written and "tok-known-5521" not in written
    assert written == "unexpected RuntimeError: {'Authorization': 'Basic ***'} ***\n\n"


SCHEMA = json.loads((Path(__file__).parents[1] / "schemas/plan.schema.json").read_text())
CHANGES = (
    Change("churn", "model", None, "managed"),
    Change("churn", "production", None, ("7", "8")),
    Change("fraud-detector", "staging", ("2",), ()),
    Change("fraud-detector", "alias", "1", "2", alias="champion"),
    Change("fraud-detector", "alias", None, "3", alias="challenger"),
)


def test_json_review_gives_programs_nulls_arrays_and_alias_fields() -> None:
    data = json.loads(json_report.render_review(Review("origin/main", CHANGES, PLAN, ())))
    jsonschema.validate(data, SCHEMA)
    assert data["base"]["changes"] == [
        {"model": "churn", "key": "model", "before": None, "after": "managed"},
        {"model": "churn", "key": "production", "before": None, "after": ["7", "8"]},
        {"model": "fraud-detector", "key": "staging", "before": ["2"], "after": []},
        {"model": "fraud-detector", "key": "alias", "alias": "champion", "before": "1", "after": "2"},
        {"model": "fraud-detector", "key": "alias", "alias": "challenger", "before": None, "after": "3"},
    ]
    assert "—" not in json.dumps(data) and '"[]"' not in json.dumps(data)


def test_the_plan_schema_refuses_the_old_string_forms() -> None:
    data = json.loads(json_report.render_review(Review("origin/main", CHANGES, PLAN, ())))
    for key, before in (("production", "—"), ("staging", "[]"), ("alias champion", "1")):
        old = {**data, "base": {**data["base"], "changes": [
            {"model": "m", "key": key, "before": before, "after": "2"}]}}
        try:
            jsonschema.validate(old, SCHEMA)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"{key}: {before!r} passed the schema")
    with_v1 = {**data, "format_version": 1}
    try:
        jsonschema.validate(with_v1, SCHEMA)
    except jsonschema.ValidationError:
        return
    raise AssertionError("format_version 1 passed the schema")


def test_text_keeps_showing_absent_and_empty_as_before() -> None:
    assert [str(c) for c in CHANGES] == ["now managed", "production: — → 7, 8", "staging: 2 → []",
                                         "alias champion: 1 → 2", "alias challenger: — → 3"]


PARTIAL = Plan(URI, STEPS[2:5], targets=("fraud-detector",))


def test_every_report_of_a_run_limited_to_some_models_says_it_is_partial() -> None:
    line = "Partial run: only fraud-detector (--model); the file's other models were left out."
    result = ApplyResult(URI, RESULT.outcomes[2:5], targets=("fraud-detector",))
    for rendered in (text.render_plan(PARTIAL, "stages.yaml"), markdown.render_plan(PARTIAL, "stages.yaml"),
                     text.render_plan(Plan(URI, (), targets=("fraud-detector",)), "stages.yaml"),
                     text.render_result(result), markdown.render_result(result),
                     markdown.render_review(Review("main", (), PARTIAL, ()), "stages.yaml")):
        assert line in rendered, rendered
    for data in (json.loads(json_report.render_plan(PARTIAL)), json.loads(json_report.render_result(result))):
        assert data["partial"] is True and data["models"] == ["fraud-detector"]
    jsonschema.validate(json.loads(json_report.render_plan(PARTIAL)), SCHEMA)
    assert "Partial" not in text.render_plan(PLAN, "stages.yaml") + markdown.render_plan(PLAN, "stages.yaml")


def test_apply_results_follow_their_schema_lease_loss_and_unexpected_effects_included() -> None:
    schema = json.loads((Path(__file__).parents[1] / "schemas/apply.schema.json").read_text())
    result = ApplyResult("http://registry", (
        Outcome(Transition("m", "2", Stage.STAGING, Stage.PRODUCTION, archive_existing_versions=True), Status.APPLIED),
        Outcome(SetAlias("m", "champion", "2", None), Status.SKIPPED, "lease lost: not renewed in time"),
    ), unexpected={"m": ("version 3 is in Archived, where this apply should have left it in Staging",)})
    data = json.loads(json_report.render_result(result))
    jsonschema.validate(data, schema)
    assert data["ok"] is False and data["unexpected"] == [
        {"model": "m", "detail": "version 3 is in Archived, where this apply should have left it in Staging"}]
    assert data["steps"][1]["error"] == "lease lost: not renewed in time" and data["steps"][1]["from_version"] is None


def test_the_saved_plan_schema_stands_alone_and_keeps_the_plan_schemas_definitions() -> None:
    schemas = Path(__file__).parents[1] / "schemas"
    plan, saved = (json.loads((schemas / name).read_text()) for name in ("plan.schema.json", "saved-plan.schema.json"))
    assert {k: saved["properties"][k] for k in plan["properties"]} == plan["properties"]
    assert {k: saved["$defs"][k] for k in plan["$defs"]} == plan["$defs"]
