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
    ("https://acct.blob.core.windows.net/c?sv=2024-11-04&sp=r&sig=AbC%2Bd%3D",
     "https://acct.blob.core.windows.net/c?sv=***&sp=***&sig=***"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ab12",
     "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=***&X-Amz-Credential=***&X-Amz-Signature=***"),
    ("https://storage.googleapis.com/b/o?X-Goog-Credential=sa%40p&X-Goog-Signature=0f0f&X-Goog-Expires=60",
     "https://storage.googleapis.com/b/o?X-Goog-Credential=***&X-Goog-Signature=***&X-Goog-Expires=***"),
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


@pytest.mark.parametrize(("text", "secret"), [
    ("cannot fetch https://acct.blob.core.windows.net/m/model.pkl?sv=2024-11-04&sig=c2lnbmF0dXJl%3D: 403",
     "c2lnbmF0dXJl"),
    ("GET /b/k?X-Amz-Credential=AKIAEXAMPLE%2F20240101&X-Amz-Signature=f00dfeed returned 403", "f00dfeed"),
    ("GET /b/k?X-Amz-Credential=AKIAEXAMPLE%2F20240101&X-Amz-Signature=f00dfeed returned 403", "AKIAEXAMPLE"),
    ("x?X-Goog-Signature=0badc0de&X-Goog-Date=20240101", "0badc0de"),
    ("request headers: {'Authorization': 'Bearer unknown-token-1234', 'Accept': '*/*'}", "unknown-token-1234"),
    ("Authorization: Basic dXNlcjpzZWNyZXQ=", "dXNlcjpzZWNyZXQ="),
    ("retrying with Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "eyJhbGciOiJIUzI1NiJ9"),
])
def test_scrub_masks_signed_url_values_and_authorization_headers_it_was_never_told_about(
        text: str, secret: str) -> None:
    scrubbed = uris.scrub(text, ())
    assert secret not in scrubbed and "***" in scrubbed


def test_scrub_leaves_ordinary_text_alone() -> None:
    text = "did you mean 'fraud-detector'? Basic permissions are READ; see https://mlflow.org/docs?page=2"
    assert uris.scrub(text, ()) == text


def test_a_signed_url_in_the_uri_makes_its_signature_a_known_secret() -> None:
    assert "c2lnbmF0dXJl" in uris.secrets("https://h/m?sv=2024&sig=c2lnbmF0dXJl", {})
