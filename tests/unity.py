"""What Unity Catalog refuses, as a rule set for the loopback proxy: a simulation of UC's documented rules in
front of a real MLflow server, not Databricks itself."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

_BAD_TAG_KEY = re.compile(r"[.,\-=/:]")
_ONE_NAME = re.compile(r"name\s*=\s*'(?:[^'\\]|\\.)*'")


def refuse(method: str, path: str, body: bytes) -> str | None:
    """Why UC would refuse this request; None when it would serve it."""
    parts = urlsplit(path)
    route = parts.path.rsplit("/mlflow/", 1)[-1]
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    data = json.loads(body) if body else {}
    if route in ("model-versions/transition-stage", "registered-models/get-latest-versions"):
        return "Unity Catalog has no stages"
    if route == "model-versions/search":
        if "order_by" in query:
            return "order_by is not supported on model version search"
        if not _ONE_NAME.fullmatch(query.get("filter", "").strip()):
            return f"model version search takes one name='...' condition, got {query.get('filter')!r}"
    if route == "registered-models/search" and ("filter" in query or "order_by" in query):
        return "registered model search takes no filter and no order_by"
    if route.endswith("set-tag") and _BAD_TAG_KEY.search(str(data.get("key", ""))):
        return f"invalid tag key {data.get('key')!r}: . , - = / : are not allowed"
    if route == "registered-models/create":
        tags = data.get("tags") or []
        if len(str(data.get("name", "")).split(".")) != 3:
            return f"{data.get('name')!r} is not a three-level name catalog.schema.model"
        if any(_BAD_TAG_KEY.search(str(t.get("key", ""))) for t in tags):
            return "invalid tag key on create"
    return None
