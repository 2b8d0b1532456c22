"""Registry webhooks end to end: a real MLflow server delivers its events to a real `stagectl webhook serve`,
which proposes and pushes; unsigned, tampered and replayed deliveries are refused and change nothing."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import seed
from tests.e2e.helpers import STAGECTL, stagectl
from tests.gitrepo import commit_file, git, make_repo
from tests.servers import Server, free_port, start_server, stop_server

pytestmark = pytest.mark.e2e

SECRET = "whsec-e2e-7719"


@pytest.fixture(scope="module")
def webhook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that may deliver to loopback over http: settings a test sets, never stagectl."""
    from cryptography.fernet import Fernet

    server = start_server(tmp_path_factory.mktemp("webhook-server"), env={
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        # One key for every worker: without it each generates its own and cannot read the others' secrets.
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "MLFLOW_WEBHOOK_CACHE_TTL": "1"})
    yield server
    stop_server(server)


def _post(port: int, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def _signed(body: bytes, delivery: str, at: int) -> dict[str, str]:
    from mlflow.webhooks.delivery import _generate_hmac_signature  # MLflow's own signing

    return {"X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": str(at),
            "X-MLflow-Signature": _generate_hmac_signature(SECRET, delivery, str(at), body.decode())}


def _wait(condition: object, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.3)
    return False


def test_registry_events_start_proposals_and_forged_deliveries_are_refused(
        tmp_path: Path, webhook_server: Server, unique: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=webhook_server.uri, registry_uri=webhook_server.uri)
    name = f"{unique}-hooked"
    client.create_registered_model(name)
    client.create_model_version(name, source=seed.SOURCE)
    origin = tmp_path / "origin.git"
    seed_repo = make_repo(tmp_path / "seed")
    commit_file(seed_repo, f"apiVersion: stagectl/v1\nmodels:\n  {name}:\n    production: 1\n"
                           "    policy: {propose: [staging]}\n", "Serve v1")
    git(tmp_path, "clone", "-q", "--bare", str(seed_repo), str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    git(work, "config", "user.name", "stagectl")
    git(work, "config", "user.email", "stagectl@example.com")
    assert stagectl("apply", "--tracking-uri", webhook_server.uri, cwd=work).returncode == 0

    port = free_port()
    log = tmp_path / "serve.log"
    env = {"HOOK_SECRET": SECRET, "NO_COLOR": "1", "PATH": str(Path(STAGECTL).parent) + ":/usr/bin:/bin"}
    serve = subprocess.Popen([STAGECTL, "webhook", "serve", "--port", str(port), "--secret-env", "HOOK_SECRET",
                              "--push", "origin", "--tracking-uri", webhook_server.uri], cwd=work, env=env,
                             stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    branch = f"stagectl/promote/{name}/staging"

    def proposed() -> str | None:
        found = subprocess.run(["git", "show", f"{branch}:stages.yaml"], cwd=origin, capture_output=True, text=True)
        return found.stdout if found.returncode == 0 else None

    try:
        assert _wait(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 30), log.read_text()
        url = ["--url", f"http://127.0.0.1:{port}/", "--secret-env", "HOOK_SECRET"]
        made = stagectl("webhook", "register", *url, "--tracking-uri", webhook_server.uri, cwd=work, env=env)
        assert made.returncode == 0 and "Created webhook 'stagectl'" in made.stderr, made.stderr
        again = stagectl("webhook", "register", *url, "--tracking-uri", webhook_server.uri, cwd=work, env=env)
        assert again.returncode == 0 and "Updated webhook 'stagectl'" in again.stderr, again.stderr
        (hook,) = [h for h in client.list_webhooks() if h.name == "stagectl"]
        assert sorted(str(e) for e in hook.events) == sorted(
            ["model_version.created", "model_version_tag.set", "model_version_alias.created",
             "model_version_alias.deleted"])
        time.sleep(2)  # the server's webhook cache (1 s here) forgets that there were none

        # A new version: MLflow delivers, serve proposes it and pushes the branch.
        client.create_model_version(name, source=seed.SOURCE)  # v2
        assert _wait(lambda: (proposed() or "").find("staging: 2") >= 0), log.read_text()
        tip = git(origin, "rev-parse", branch)

        # v3 arrives while the webhook is off; forged deliveries about it must change nothing.
        client.update_webhook(hook.webhook_id, status="DISABLED")
        time.sleep(2)
        client.create_model_version(name, source=seed.SOURCE)  # v3
        body = json.dumps({"entity": "model_version", "action": "created", "timestamp": "2026-01-01T00:00:00+00:00",
                           "data": {"name": name, "version": "3", "source": seed.SOURCE}}).encode()
        now = int(time.time())
        queued = log.read_text().count(" queued")
        forged = {
            "unsigned": _post(port, body, {}),
            "tampered": _post(port, body.replace(b'"3"', b'"4"'), _signed(body, "f-1", now)),
            "other secret": _post(port, body, {**_signed(body, "f-2", now), "X-MLflow-Signature": "v1,AAAA"}),
            "replayed": _post(port, body, _signed(body, "f-3", now - 400)),
        }
        assert forged == dict.fromkeys(forged, 401)
        time.sleep(3)
        assert git(origin, "rev-parse", branch) == tip and log.read_text().count(" queued") == queued
        assert log.read_text().count("refused a delivery") == 4

        # The same delivery, signed with the secret and fresh, is acted on; played again, it is refused.
        genuine = _signed(body, str(uuid.uuid4()), int(time.time()))
        assert _post(port, body, genuine) == 202
        assert _wait(lambda: "staging: 3" in (proposed() or "")), log.read_text()
        assert _post(port, body, genuine) == 401

        # An alias changed outside stagectl: serve reports the drift.
        client.update_webhook(hook.webhook_id, status="ACTIVE")
        time.sleep(2)
        client.set_registered_model_alias(name, "shadow", "1")
        assert _wait(lambda: "model_version_alias.created" in log.read_text()), log.read_text()
        assert _wait(lambda: f"{name}: " in log.read_text().split("model_version_alias.created")[-1]), \
            log.read_text()
        assert git(work, "branch", "--show-current") == "main" and git(work, "status", "--porcelain") == ""
        assert SECRET not in log.read_text()
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    assert serve.returncode == 0, log.read_text()[-3000:]


@pytest.fixture
def bare_serve(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """`stagectl webhook serve` with no registry behind it (nothing here is a delivery): its port and its log."""
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, "apiVersion: stagectl/v1\nmodels:\n  m:\n    production: 1\n", "Serve v1")
    port = free_port()
    log = tmp_path / "serve.log"
    env = {"HOOK_SECRET": "cap-secret-6620", "NO_COLOR": "1", "PATH": str(Path(STAGECTL).parent) + ":/usr/bin:/bin"}
    serve = subprocess.Popen([STAGECTL, "webhook", "serve", "--port", str(port), "--secret-env", "HOOK_SECRET",
                              "--tracking-uri", f"http://127.0.0.1:{free_port()}"], cwd=repo, env=env,
                             stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        assert _wait(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 30), log.read_text()
        yield port, log
    finally:
        serve.terminate()
        serve.wait(timeout=30)


def _status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_connections_beyond_the_cap_are_answered_503_at_once_and_service_resumes(
        bare_serve: tuple[int, Path]) -> None:
    """A client that opens connections and sends nothing must not take a thread each without end: past the
    cap, connections are answered 503 at once (MLflow retries a delivery that gets one), and once the idle
    ones close, requests are served again."""
    from controller.commands.webhook import MAX_CONNECTIONS

    port, log = bare_serve
    assert _status(port) == 405  # served: GET is not a delivery
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(1)  # each has its thread now, waiting for a request that does not come
        started = time.monotonic()
        assert _status(port) == 503
        assert time.monotonic() - started < 3  # at once, not after the idle ones time out
    finally:
        for s in idle:
            s.close()
    assert _wait(lambda: _status(port) == 405, 10)
    assert f"busy: {MAX_CONNECTIONS} connections open; answering 503" in log.read_text()


def test_a_client_that_trickles_its_request_is_cut_off_after_the_timeout(bare_serve: tuple[int, Path]) -> None:
    """One byte a second never trips a per-read timeout; the request as a whole gets 10 seconds."""
    port, _ = bare_serve
    trickle = socket.create_connection(("127.0.0.1", port))
    trickle.settimeout(0.5)
    started = time.monotonic()
    closed_after = None
    try:
        trickle.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        while time.monotonic() - started < 20:
            try:
                trickle.sendall(b"X")
                if trickle.recv(1024) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass
            except OSError:
                closed_after = time.monotonic() - started
                break
            time.sleep(0.5)
    finally:
        trickle.close()
    assert closed_after is not None and 9 < closed_after < 14, closed_after
