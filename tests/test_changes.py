from __future__ import annotations

from controller import desired
from controller.changes import diff

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
