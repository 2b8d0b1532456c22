from __future__ import annotations

from controller import desired
from controller.changes import diff, last_changed

BEFORE = desired.parse("""\
apiVersion: stagectl/v1
models:
  fraud-detector: {production: 1, staging: [2], aliases: {champion: 1, shadow: 2}}
  old-model: {production: 3}
""")
AFTER = desired.parse("""\
apiVersion: stagectl/v1
models:
  fraud-detector: {production: 2, staging: [], archived: [1], aliases: {champion: 2, shadow: 2, new: 2}}
  churn: {production: [7, 8]}
""")


def test_diff_lists_each_declared_change_in_order() -> None:
    assert [f"{c.model} {c}" for c in diff(BEFORE, AFTER)] == [
        "churn now managed",
        "churn production: — → 7, 8",
        "fraud-detector production: 1 → 2",
        "fraud-detector staging: 2 → []",
        "fraud-detector archived: — → 1",
        "fraud-detector alias champion: 1 → 2",
        "fraud-detector alias new: — → 2",
        "old-model no longer managed (the registry is left as it is)",
        "old-model production: 3 → —",
    ]


def test_no_change_no_diff() -> None:
    assert diff(AFTER, AFTER) == ()


def test_policy_defaults_and_registry_changes_are_changes_too() -> None:
    held = desired.parse("""\
apiVersion: stagectl/v1
registry: {tracking_uri: "https://mlflow.example.com"}
defaults: {policy: {max_changes: 5, require_tags: {validated: "true"}}}
models:
  fraud-detector: {production: 1, policy: {frozen: "incident 42", promote_from: staging}}
""")
    lifted = desired.parse("""\
apiVersion: stagectl/v1
defaults: {policy: {max_changes: 9}}
models:
  fraud-detector: {production: 1}
""")
    assert [f"{c.where} {c}" for c in diff(held, lifted)] == [
        "(file) registry.tracking_uri: https://mlflow.example.com → —",
        "(file) defaults.policy.max_changes: 5 → 9",
        "(file) defaults.policy.require_tags: validated=true → —",
        "fraud-detector policy.require_tags: validated=true → —",
        "fraud-detector policy.promote_from: staging → —",
        "fraud-detector policy.frozen: incident 42 → —",
    ]
    assert [c.model for c in diff(held, lifted)][:3] == [None, None, None]


def test_a_policy_key_added_later_shows_up_without_code_of_its_own() -> None:
    import dataclasses

    from controller import model

    @dataclasses.dataclass(frozen=True, slots=True)
    class Gated(model.Policy):
        min_soak_hours: int | None = None

    old = dataclasses.replace(AFTER, models=(dataclasses.replace(AFTER.models[0], policy=Gated()),))
    new = dataclasses.replace(AFTER, models=(dataclasses.replace(AFTER.models[0], policy=Gated(min_soak_hours=24)),))
    assert [f"{c.where} {c}" for c in diff(old, new)] == ["churn policy.min_soak_hours: — → 24"]


def test_last_changed_finds_each_models_deciding_commit_in_one_pass() -> None:
    middle = desired.parse("""\
apiVersion: stagectl/v1
models:
  fraud-detector: {production: 2, staging: [], archived: [1], aliases: {champion: 2, shadow: 2, new: 2}}
  churn: {production: [7, 8], policy: {frozen: "hold"}}
""")
    revisions = [("c3", middle, AFTER), ("c2", AFTER, middle), ("c1", BEFORE, AFTER), ("c0", None, BEFORE)]
    assert last_changed(revisions, ["fraud-detector", "churn", "old-model"]) == {
        "churn": "c3", "fraud-detector": "c1", "old-model": "c1"}
    assert last_changed(iter(revisions[:1]), ["churn"]) == {"churn": "c3"}
