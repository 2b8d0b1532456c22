"""Which registry answers are worth another try: the split the applier's retries rest on."""

from __future__ import annotations

import pytest

from controller.registry import is_transient


@pytest.mark.parametrize(("status", "transient"), [
    (408, True), (429, True), (500, True), (502, True), (503, True), (504, True),
    (400, False), (401, False), (403, False), (404, False), (409, False), (None, False),
])
def test_throttling_timeouts_and_server_errors_are_retried_other_answers_are_not(
        status: int | None, transient: bool) -> None:
    assert is_transient(status) is transient
