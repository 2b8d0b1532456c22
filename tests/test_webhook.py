"""Webhook deliveries on plain data: what is authentic and fresh, what is refused, and what an event asks for."""

from __future__ import annotations

import json

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature

from controller import webhook

SECRET = "whsec-3371"
BODY = json.dumps({"entity": "model_version", "action": "created", "timestamp": "2026-11-27T10:00:00+00:00",
                   "data": {"name": "fraud 🚀", "version": "3", "source": "s3://b/m", "run_id": None}})
NOW = 1_795_000_000


def signed(body: str = BODY, *, secret: str = SECRET, delivery: str = "d-1", at: int = NOW) -> dict[str, str]:
    return {"X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": str(at),
            "X-MLflow-Signature": _generate_hmac_signature(secret, delivery, str(at), body)}  # as MLflow signs


def test_a_delivery_signed_as_mlflow_signs_it_is_accepted_once() -> None:
    seen: dict[str, float] = {}
    assert webhook.verify(SECRET, signed(), BODY.encode(), NOW + 10, seen) == "d-1"
    with pytest.raises(webhook.Refused, match="replayed: delivery d-1 was received before"):
        webhook.verify(SECRET, signed(), BODY.encode(), NOW + 20, seen)
    # Header names are case-insensitive, and during a secret's rotation either signature may match.
    both = {k.lower(): v for k, v in signed(delivery="d-2").items()}
    both["x-mlflow-signature"] = f"{signed(delivery='d-2', secret='old')['X-MLflow-Signature']} " \
                                 f"{both['x-mlflow-signature']}"
    assert webhook.verify(SECRET, both, BODY.encode(), NOW, seen) == "d-2"


@pytest.mark.parametrize(("headers", "body", "now", "why"), [
    ({}, BODY, NOW, "unsigned"),
    ({k: v for k, v in signed().items() if k != "X-MLflow-Signature"}, BODY, NOW, "unsigned"),
    (signed(), BODY.replace('"3"', '"4"'), NOW, "does not match"),  # tampered on the way
    (signed(secret="another"), BODY, NOW, "does not match"),
    ({**signed(), "X-MLflow-Delivery-Id": "d-9"}, BODY, NOW, "does not match"),  # the id is signed too
    (signed(at=NOW - 301), BODY, NOW, "replayed or delayed: signed 301 s ago"),
    (signed(at=NOW + 301), BODY, NOW, "replayed or delayed"),
    ({**signed(), "X-MLflow-Timestamp": "soon"}, BODY, NOW, "not a time"),
], ids=["nothing", "no-signature", "tampered", "wrong-secret", "other-id", "stale", "future", "bad-time"])
def test_unsigned_tampered_and_replayed_deliveries_are_refused(headers: dict[str, str], body: str, now: int,
                                                                why: str) -> None:
    seen: dict[str, float] = {}
    with pytest.raises(webhook.Refused, match=why):
        webhook.verify(SECRET, headers, body.encode(), now, seen)
    assert seen == {}  # a refused delivery is not remembered: MLflow's retry of a real one still passes


def test_accepted_deliveries_are_forgotten_once_they_could_no_longer_pass_as_fresh() -> None:
    seen: dict[str, float] = {}
    for n in range(50):
        webhook.verify(SECRET, signed(delivery=f"d-{n}", at=NOW + n * 60), BODY.encode(), NOW + n * 60, seen)
    assert len(seen) <= webhook.TOLERANCE // 60 + 1


def test_events_say_what_they_ask_for() -> None:
    assert webhook.event(BODY.encode()) == webhook.Event("model_version.created", "fraud 🚀", "3")
    assert webhook.event(BODY.encode()).wants == "propose"
    tag = {"entity": "model_version_tag", "action": "set", "data": {"name": "m", "version": "2", "key": "k"}}
    assert webhook.event(json.dumps(tag).encode()).wants == "propose"
    alias = {"entity": "model_version_alias", "action": "deleted", "data": {"name": "m", "alias": "champion"}}
    assert webhook.event(json.dumps(alias).encode()) == webhook.Event("model_version_alias.deleted", "m", None,
                                                                      "champion")
    assert webhook.event(json.dumps(alias).encode()).wants == "drift"
    other = {"entity": "registered_model", "action": "created", "data": {"name": "m"}}
    assert webhook.event(json.dumps(other).encode()).wants is None
    for bad in (b"not json", b"[]", b'{"entity": 1}'):
        with pytest.raises(ValueError):
            webhook.event(bad)
