from __future__ import annotations

import base64

import pytest

from controller import uris


@pytest.mark.parametrize(("uri", "shown"), [
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("sqlite:////abs/path/mlflow.db", "sqlite:////abs/path/mlflow.db"),
    ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ("https://ci:hunter22@mlflow.example.com/path", "https://***@mlflow.example.com/path"),
    ("https://token@mlflow.example.com", "https://***@mlflow.example.com"),
    ("https://h/x?workspace=a&access_token=zzz", "https://h/x?workspace=a&access_token=***"),
    ("databricks", "databricks"),
])
def test_redact_masks_credentials_and_keeps_the_rest(uri: str, shown: str) -> None:
    assert uris.redact(uri) == shown


def test_resolution_order_option_then_environment_then_file_then_default() -> None:
    env = {"MLFLOW_TRACKING_URI": "http://env"}
    assert uris.resolve("http://opt", "http://file", env) == "http://opt"
    assert uris.resolve(None, "http://file", env) == "http://env"
    assert uris.resolve(None, "http://file", {}) == "http://file"
    assert uris.resolve(None, None, {}) == "sqlite:///mlflow.db"


def test_scrub_masks_known_secrets_in_every_encoding() -> None:
    env = {"MLFLOW_TRACKING_USERNAME": "bot", "MLFLOW_TRACKING_PASSWORD": "p@ss w/rd",
           "MLFLOW_TRACKING_TOKEN": "tok-123456"}
    known = uris.secrets("http://u:urlpw99@h", env)
    basic = base64.b64encode(b"bot:p@ss w/rd").decode()
    text = (f"p@ss w/rd p%40ss%20w%2Frd p%40ss+w%2Frd tok-123456 {basic} "
            f"{base64.b64encode(b'tok-123456').decode()} http://u:urlpw99@h ftp://a:b@c")
    scrubbed = uris.scrub(text, known)
    for leaked in ("p@ss", "p%40ss", "tok-123456", basic, "urlpw99", "a:b@"):
        assert leaked not in scrubbed
    assert scrubbed.count("***") >= 8


def test_an_unparsable_uri_is_still_redacted() -> None:
    assert uris.redact("https://bot:pw@[bad") == "https://***@[bad"
    assert uris.secrets("https://bot:pw@[bad", {}) == ()


def test_the_registry_is_found_in_mlflow_order_apart_from_tracking() -> None:
    env = {"MLFLOW_TRACKING_URI": "http://t", "MLFLOW_REGISTRY_URI": "http://r-env"}
    assert uris.locate(uris.Given(registry_uri="http://r-opt"), None, "http://r-file", env) == uris.Located(
        "http://r-opt", "http://t")
    assert uris.locate(uris.Given(), None, "http://r-file", env).registry_uri == "http://r-env"
    assert uris.locate(uris.Given(), None, "http://r-file", {"MLFLOW_TRACKING_URI": "http://t"}).registry_uri == (
        "http://r-file")
    assert uris.locate(uris.Given("http://opt"), "http://t-file", None, {}) == uris.Located("http://opt", "http://opt")
    assert uris.locate(uris.Given(), None, None, {"MLFLOW_TRACKING_URI": "databricks://prof"}).registry_uri == (
        "databricks-uc://prof")
