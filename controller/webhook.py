"""MLflow's registry webhooks, as stagectl receives them: is a delivery authentic and fresh, and what it asks
for. Pure: the receiver (commands/webhook.py) does the serving and runs the pipeline."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

DELIVERY_ID = "X-MLflow-Delivery-Id"
TIMESTAMP = "X-MLflow-Timestamp"  # seconds since the epoch, by the sender's clock
SIGNATURE = "X-MLflow-Signature"  # "v1," + base64(HMAC-SHA256(secret, "<delivery id>.<timestamp>.<body>"))
TOLERANCE = 300  # seconds: an older (or further future) delivery is refused as a replay

# What stagectl subscribes to: new versions and their tags may bring a proposal, alias changes may be drift.
PROPOSE_EVENTS = ("model_version.created", "model_version_tag.set")
DRIFT_EVENTS = ("model_version_alias.created", "model_version_alias.deleted")
EVENTS = PROPOSE_EVENTS + DRIFT_EVENTS


class Refused(Exception):
    """A delivery that is not provably from the registry, or not fresh: answered 401, and nothing is done."""


@dataclass(frozen=True, slots=True)
class Event:
    name: str  # entity.action, as MLflow names its webhook events
    model: str | None
    version: str | None = None
    alias: str | None = None

    @property
    def wants(self) -> str | None:
        """What the event asks of stagectl: "propose", "drift", or None (not an event it acts on)."""
        return "propose" if self.name in PROPOSE_EVENTS else "drift" if self.name in DRIFT_EVENTS else None


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float,
           seen: MutableMapping[str, float]) -> str:
    """The delivery's id, when it is signed with the secret, fresh, and not seen before; else Refused.

    `seen` remembers accepted deliveries (id → timestamp) for as long as they would pass as fresh, so a
    captured delivery cannot be played again within the tolerance either. MLflow retries a delivery after an
    error answer, which is never recorded here, so its retries pass; a retry of one that was accepted (its
    answer lost) is refused, and it was acted on already.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    delivery = lower.get(DELIVERY_ID.lower(), "")
    timestamp = lower.get(TIMESTAMP.lower(), "")
    signed = lower.get(SIGNATURE.lower(), "")
    if not (delivery and timestamp and signed):
        raise Refused(f"unsigned: {SIGNATURE}, {DELIVERY_ID} and {TIMESTAMP} are all required")
    if not timestamp.isdigit():
        raise Refused(f"{TIMESTAMP} is not a time in seconds")
    expected = signature(secret, delivery, timestamp, body)
    # Several signatures may be sent while a secret is rotated: one that matches is enough.
    if not any(hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()) for given in signed.split()):
        raise Refused("the signature does not match: not signed with this secret, or changed on the way")
    if abs(now - int(timestamp)) > TOLERANCE:
        raise Refused(f"replayed or delayed: signed {int(now) - int(timestamp)} s ago, more than {TOLERANCE} s")
    for old, at in list(seen.items()):
        if now - at > TOLERANCE:
            del seen[old]
    if delivery in seen:
        raise Refused(f"replayed: delivery {delivery} was received before")
    seen[delivery] = int(timestamp)
    return delivery


def event(body: bytes) -> Event:
    """The event in a verified delivery's body; ValueError when it is not one MLflow sends."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"the body is not JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("entity"), str) or not isinstance(data.get("action"),
                                                                                              str):
        raise ValueError("the body names no entity and action")
    fields = data.get("data") if isinstance(data.get("data"), dict) else {}
    assert isinstance(fields, dict)

    def text(key: str) -> str | None:
        value = fields.get(key)
        return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None

    return Event(f"{data['entity']}.{data['action']}", text("name"), text("version"), text("alias"))
