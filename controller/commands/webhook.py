"""stagectl webhook serve and register: the registry's events start a proposal (or a drift report) at once,
instead of at the next scheduled run. Webhooks are hints: the scheduled workflow still runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .. import desired, pipeline, proposer, uris, webhook
from ..errors import ConfigError, ControllerError, Problem
from ..gitops import Checkout, GitError
from ..reporters import proposal as report
from . import Output

MAX_BODY = 1 << 20  # MLflow's payloads are a few hundred bytes
MAX_CONNECTIONS = 32  # served at once; more are answered 503 at once, and MLflow retries them
_BUSY = json.dumps({"error": f"busy: {MAX_CONNECTIONS} connections are open; try again"}).encode()
DESCRIPTION = "stagectl: new versions become promotion proposals; alias changes are checked for drift"


def register(url: str, secret_env: str, name: str, file: Path, given: uris.Given, out: Output) -> int:
    secret = _secret(secret_env, out)
    out.also_hide(url)
    state = desired.load(file) if file.exists() else None
    registry = pipeline.connect(state, given, out)
    webhook_id, created = registry.register_webhook(name, url, webhook.EVENTS, secret, DESCRIPTION)
    out.info(f"{'Created' if created else 'Updated'} webhook '{name}' ({webhook_id}) on {registry.display_uri}: "
             f"{', '.join(webhook.EVENTS)} to {uris.redact(url)}, signed with the secret in ${secret_env}")
    return 0


def serve(port: int, host: str, secret_env: str, push: str | None, file: Path, given: uris.Given,
          out: Output) -> int:
    secret = _secret(secret_env, out)
    desired.load(file)  # a file that does not validate is reported now, not at the first delivery
    checkout = Checkout.find(file)
    if checkout is None:
        raise GitError(f"{file} is not in a git repository: webhook serve writes proposals as branches there")
    worker = _Worker(file, given, push, checkout, out)
    seen: dict[str, float] = {}
    lock = threading.Lock()

    def handle(headers: dict[str, str], body: bytes, client: str) -> tuple[int, dict[str, str]]:
        with lock:
            try:
                delivery = webhook.verify(secret, headers, body, time.time(), seen)
            except webhook.Refused as e:
                out.info(f"refused a delivery from {client}: {e}")
                return 401, {"error": str(e)}
        try:
            event = webhook.event(body)
        except ValueError as e:
            return 400, {"error": str(e)}
        if event.wants is None or event.model is None:
            out.info(f"delivery {delivery}: {event.name}: nothing to do")
            return 200, {"status": "ignored", "event": event.name}
        out.info(f"delivery {delivery}: {event.name} on {event.model}: {event.wants} queued")
        worker.add(event.wants, event.model)
        return 202, {"status": "queued", "action": event.wants, "model": event.model}

    server = _Server((host, port), _handler(handle, out), out)
    worker.start()
    out.info(f"Listening on http://{host}:{server.server_port}/ for MLflow's registry webhooks; proposals for "
             f"{file}" + (f", pushed to '{push}'" if push else ", kept in this checkout (no --push)"))
    stopping = threading.Event()

    def terminate(*_: object) -> None:
        if not stopping.is_set():  # a second SIGTERM while stopping changes nothing
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, terminate)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        worker.stop()
    out.info("Stopped")
    return 0


def _secret(name: str, out: Output) -> str:
    secret = os.environ.get(name, "")
    if not secret:
        raise ConfigError((Problem(f"--secret-env {name}", f"the environment variable {name} is not set or empty: "
                                   "export the webhook's secret there (the same for serve and register)"),))
    out.secrets = (*out.secrets, secret)  # masked in every line written, whatever the variable is called
    return secret


class _Server(ThreadingHTTPServer):
    """A thread per connection, up to MAX_CONNECTIONS: a client that opens connections and sends nothing holds
    threads only until their timeout, and never more than that many."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], out: Output) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._out, self._said = out, 0.0

    def process_request(self, request: Any, client_address: Any) -> None:
        if self._slots.acquire(blocking=False):
            try:
                super().process_request(request, client_address)
            except BaseException:  # no thread to give the slot back
                self._slots.release()
                raise
            return
        if time.monotonic() - self._said > 60:  # said once a minute, not once per connection of a flood
            self._said = time.monotonic()
            self._out.info(f"busy: {MAX_CONNECTIONS} connections open; answering 503 to more (from "
                           f"{client_address[0]}, among others)")
        try:
            request.settimeout(1)
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                            b"Retry-After: 10\r\nConnection: close\r\nContent-Length: "
                            + str(len(_BUSY)).encode() + b"\r\n\r\n" + _BUSY)
        except OSError:
            pass
        self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _handler(handle: Callable[[dict[str, str], bytes, str], tuple[int, dict[str, str]]],
             out: Output) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "stagectl"
        sys_version = ""
        timeout = 10  # seconds a client may take to send its request: a silent one does not hold a thread

        def handle(self) -> None:
            # `timeout` bounds each read; this bounds the whole request, so a client sending a byte now and then
            # cannot keep its connection (one of MAX_CONNECTIONS) for longer either.
            cut = threading.Timer(self.timeout, self._cut)
            cut.daemon = True
            cut.start()
            try:
                super().handle()
            finally:
                cut.cancel()

        def _cut(self) -> None:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/":
                return self._answer(404, {"error": "deliveries go to POST /"})
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                return self._answer(413, {"error": f"a delivery is at most {MAX_BODY} bytes"})
            body = self.rfile.read(length)
            status, answer = handle(dict(self.headers.items()), body, self.client_address[0])
            self._answer(status, answer)

        def do_GET(self) -> None:
            self._answer(405, {"error": "deliveries go to POST /"})

        def _answer(self, status: int, answer: dict[str, str]) -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            out.info(f"{self.client_address[0]} {format % args}")

    return Handler


class _Worker(threading.Thread):
    """Runs what deliveries ask for, one run at a time; deliveries that arrive meanwhile join the next run."""

    def __init__(self, file: Path, given: uris.Given, push: str | None, checkout: Checkout, out: Output) -> None:
        super().__init__(name="stagectl-webhook-worker", daemon=True)
        self._file, self._given, self._push, self._checkout, self._out = file, given, push, checkout, out
        self._wake = threading.Condition()
        self._pending: dict[str, set[str]] = {"propose": set(), "drift": set()}
        self._stopping = False

    def add(self, kind: str, model: str) -> None:
        with self._wake:
            self._pending[kind].add(model)
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self.join(timeout=60)

    def run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._stopping or any(self._pending.values()))
                if self._stopping:
                    return
                work = {kind: sorted(models) for kind, models in self._pending.items()}
                self._pending = {"propose": set(), "drift": set()}
            pipeline.forget_history()  # the checkout may have moved since the last run
            tasks = [(task, work[kind]) for kind, task in (("propose", self._propose), ("drift", self._drift))
                     if work[kind]]
            for task, models in tasks:  # a failed propose does not skip the drift report, nor stop the receiver
                try:
                    task(models)
                except ControllerError as e:
                    self._out.info(f"error: {e}")
                except Exception as e:  # logged; the next delivery runs again
                    self._out.info(f"error: an unexpected error occurred: {type(e).__name__}: {e}")

    def _propose(self, models: list[str]) -> None:
        if self._push:
            why = self._checkout.sync(self._push)
            if why:
                self._out.info(f"could not bring the checkout up to date with '{self._push}' ({why}); "
                               "proposing from the checkout as it is")
        declared = {m.name for m in desired.load(self._file).models}
        mine = [m for m in models if m in declared]
        for model in sorted(set(models) - declared):
            self._out.info(f"{model}: not in {self._file}; no proposal")
        if not mine:
            return
        result = proposer.run(mine, self._file, self._given, False, self._out, remote=self._push or "origin")
        self._out.data(report.render(result, "text"))
        if not self._push:
            return
        # Every proposal whose branch here differs from the remote's, also one an earlier push failed to send.
        for p in result.proposed:
            try:
                if self._checkout.push(self._push, p.branch):
                    self._out.info(f"pushed {p.branch} to '{self._push}'")
            except GitError as e:  # the other branches still go; this one is pushed by the next run
                self._out.info(f"error: {e}")

    def _drift(self, models: list[str]) -> None:
        """The file's drift report (all its models: the one a scheduled drift run writes)."""
        from .drift import drift_command

        drift_command(self._file, self._given, "text", False, "report", None, (1, (300.0, 300.0)), self._out)
