"""Which registry to talk to, and how to name it (or anything else) without leaking credentials."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, quote_plus, unquote_plus, urlsplit

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's own default when nothing is set
MASK = "***"
_SECRET_ENV = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "DATABRICKS_TOKEN")
_SECRET_QUERY_KEY = re.compile(r"token|password|passwd|secret|key|auth|signature|credential|^sig$", re.I)
# A signed URL (Azure SAS, AWS and GCS presigned) is a credential as a whole: every value of its query is masked.
_SIGNATURE_KEY = re.compile(r"^(sig|x-amz-signature|x-goog-signature|signature)$", re.I)
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_QUERY = re.compile(r"\?(?P<query>[^\s'\"<>#`?]+)")
# An Authorization header's value, in whatever shape a library printed it (a dict, a raw request, a log line).
_AUTH_HEADER = re.compile(
    r"(?P<name>authorization['\"]?\s*[:=]\s*['\"]?)(?P<scheme>(?:basic|bearer|token|digest)\s+)?[^\s'\",}]+", re.I)
_AUTH_VALUE = re.compile(r"\b(?P<scheme>Basic|Bearer)\s+(?=[A-Za-z._~-]*[0-9+/=])[A-Za-z0-9._~+/=-]{8,}")


@dataclass(frozen=True, slots=True)
class Given:
    """The URIs a command line (or a caller of get_model) names; None where it names none."""

    tracking_uri: str | None = None
    registry_uri: str | None = None


@dataclass(frozen=True, slots=True)
class Located:
    """Where the registry is, and the tracking server beside it (runs and artifacts resolve against it)."""

    registry_uri: str
    tracking_uri: str


def resolve(option: str | None, from_file: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the file's registry.tracking_uri, else MLflow's default."""
    for candidate in (option, environ.get("MLFLOW_TRACKING_URI"), from_file):
        if candidate:
            return candidate
    return DEFAULT_TRACKING_URI


def locate(given: Given, file_tracking: str | None = None, file_registry: str | None = None,
           environ: Mapping[str, str] = os.environ) -> Located:
    """The registry as MLflow itself finds it, apart from tracking: --registry-uri, else MLFLOW_REGISTRY_URI,
    else the file's registry.registry_uri, else what MLflow derives from the tracking URI (resolved as above).

    The order matters: an application that loads `models:/...` through MLflow with the same environment must
    read the very registry stagectl writes.
    """
    tracking = resolve(given.tracking_uri, file_tracking, environ)
    for candidate in (given.registry_uri, environ.get("MLFLOW_REGISTRY_URI"), file_registry):
        if candidate:
            return Located(candidate, tracking)
    return Located(_registry_for(tracking), tracking)


def _registry_for(tracking: str) -> str:
    """MLflow's default registry for a tracking URI: Unity Catalog beside a Databricks workspace, else itself."""
    if tracking == "databricks" or tracking.startswith("databricks://"):
        return "databricks-uc" + tracking.removeprefix("databricks")
    return tracking


def redact(uri: str) -> str:
    """The URI with any user:password@ and secret-looking query values masked; otherwise unchanged."""
    try:
        parts = urlsplit(uri)
    except ValueError:  # not a URI Python can parse: mask anything that looks like user:password@
        return _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", uri)
    if "@" in parts.netloc:
        uri = uri.replace(parts.netloc, f"{MASK}@{parts.netloc.rsplit('@', 1)[1]}", 1)
    if parts.query:
        uri = uri.replace(parts.query, _mask_query(parts.query), 1)
    return uri


def _mask_query(query: str) -> str:
    """A query string with secret values masked: all of them in a signed URL, else the secret-looking ones."""
    pairs = [pair.partition("=") for pair in query.split("&")]
    keys = [unquote_plus(k) for k, _, _ in pairs]
    signed = any(_SIGNATURE_KEY.match(k) for k in keys)
    return "&".join(k + "=" + MASK if sep and (signed or _SECRET_QUERY_KEY.search(key)) else k + sep + v
                    for (k, sep, v), key in zip(pairs, keys, strict=True))


def secrets(uri: str | None = None, environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """Every secret value this process may hold, from the environment and the URI."""
    found = [environ.get(name, "") for name in _SECRET_ENV]
    user, password = environ.get("MLFLOW_TRACKING_USERNAME", ""), environ.get("MLFLOW_TRACKING_PASSWORD", "")
    if password:
        found.append(f"{user}:{password}")  # what an HTTP Basic header carries, base64-encoded
    try:
        parts = urlsplit(uri) if uri else None
    except ValueError:
        parts = None
    if parts is not None:
        found += [parts.password or "", parts.username or ""]
        if parts.password:
            found.append(f"{parts.username}:{parts.password}")
        found += [v for k, v in parse_qsl(parts.query) if _SECRET_QUERY_KEY.search(k)]
    return tuple(s for s in found if len(s) >= 3)


def scrub(text: str, known: tuple[str, ...] | None = None) -> str:
    """Mask every known secret (also URL- and base64-encoded), any user:password@ in URLs, secret query values
    (all of a signed URL's), and Authorization header values. `known` defaults to the environment's secrets."""
    for secret in secrets() if known is None else known:
        for form in _encodings(secret):
            text = text.replace(form, MASK)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _QUERY.sub(lambda m: "?" + _mask_query(m["query"]), text)
    text = _AUTH_HEADER.sub(lambda m: f"{m['name']}{m['scheme'] or ''}{MASK}", text)
    return _AUTH_VALUE.sub(lambda m: f"{m['scheme']} {MASK}", text)


def _encodings(secret: str) -> list[str]:
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(raw).decode()}
    return sorted((f for f in forms if f), key=len, reverse=True)
