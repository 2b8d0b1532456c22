"""A loopback HTTP proxy in front of a real mlflow server that fails requests on demand."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# What to do with request number n (0-based): None passes it through.
#   "503"          answer 503 without forwarding
#   "drop_before"  close the connection without forwarding
#   "drop_after"   forward (the server commits), then close without answering: an unknown outcome
#   "stall"        hold the request past the client's timeout, then close
#   "reject"       answer 400 INVALID_PARAMETER_VALUE without forwarding, as a server refusing a filter does
#   "500"          answer 500 INTERNAL_ERROR without forwarding, as a server failing a write does
Fault = str | None
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultProxy:
    def __init__(self, target: str, faults: Callable[[int, str, str], Fault] = lambda n, m, p: None,
                 stall: float = 3.0, after: Callable[[int, str, str, int], None] = lambda n, m, p, s: None,
                 refuse: Callable[[str, str, bytes], str | None] = lambda m, p, b: None) -> None:
        """`refuse(method, path with query, body)`: a reason to answer 400 INVALID_PARAMETER_VALUE, as a
        registry with stricter rules does (tests/unity.py), or None to pass the request on."""
        self.target = urlsplit(target)
        self.faults, self.stall, self.after, self.refuse = faults, stall, after, refuse
        self.refused: list[tuple[str, str, str]] = []  # (method, path, reason) of each request refused
        self.count = 0
        self.seen: list[tuple[str, str]] = []  # (method, path without the query) of every request
        self.stamps: list[tuple[float, str, str]] = []  # (time.monotonic() on arrival, method, path): the same
        self.bodies: list[bytes] = []  # the request bodies, in the same order
        self.injected: list[tuple[int, str, str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep client connections alive, as real servers do
            upstream: http.client.HTTPConnection | None = None

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self, body: bytes, headers: dict[str, str]) -> http.client.HTTPResponse:
                """Forward on this client connection's own upstream connection, reopened if it went stale."""
                for attempt in (1, 2):
                    if self.upstream is None:
                        self.upstream = http.client.HTTPConnection(proxy.target.hostname, proxy.target.port,
                                                                   timeout=60)
                    try:
                        self.upstream.request(self.command, self.path, body=body, headers=headers)
                        return self.upstream.getresponse()
                    except (http.client.HTTPException, OSError):
                        self.upstream.close()
                        self.upstream = None
                        if attempt == 2:
                            raise
                raise AssertionError("unreachable")

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy._lock:
                    n = proxy.count
                    proxy.count += 1
                    proxy.seen.append((self.command, self.path.split("?", 1)[0]))
                    proxy.stamps.append((time.monotonic(), self.command, self.path.split("?", 1)[0]))
                    proxy.bodies.append(body)
                fault = proxy.faults(n, self.command, self.path)
                reason = proxy.refuse(self.command, self.path, body)
                if reason:
                    proxy.refused.append((self.command, self.path, reason))
                    refusal = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": reason}).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(refusal)))
                    self.end_headers()
                    self.wfile.write(refusal)
                    return
                if fault:
                    proxy.injected.append((n, self.command, self.path, fault))
                if fault == "503":
                    self.send_response(503)
                    self.send_header("Content-Length", "8")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    self.wfile.write(b"injected")
                    return
                if fault in ("reject", "500"):
                    refusal = (b'{"error_code": "INVALID_PARAMETER_VALUE", "message": "injected: unsupported filter"}'
                               if fault == "reject" else b'{"error_code": "INTERNAL_ERROR", "message": "injected"}')
                    self.send_response(400 if fault == "reject" else 500)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(refusal)))
                    self.end_headers()
                    self.wfile.write(refusal)
                    return
                if fault == "stall":
                    time.sleep(proxy.stall)
                if fault in ("drop_before", "stall"):
                    self._drop()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                headers["Host"] = proxy.target.netloc
                response = self._forward(body, headers)
                data = response.read()
                proxy.after(n, self.command, self.path, response.status)
                if fault == "drop_after":
                    self._drop()
                    return
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _drop(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


WRITES = ("POST", "PATCH", "DELETE")


def writes(proxy: FaultProxy) -> list[tuple[str, str]]:
    """Every request that could change the registry, lease included, in the order they arrived."""
    return [(m, p) for m, p in proxy.seen if m in WRITES]


def writes_to(proxy: FaultProxy, model: str) -> list[tuple[str, str]]:
    """The writes whose body names the registered model `model` (the lease is the model 'stagectl-lease')."""
    return [proxy.seen[n] for n in write_numbers(proxy, model)]


def write_numbers(proxy: FaultProxy, model: str) -> list[int]:
    """The request numbers (as the faults and after hooks see them) of the writes to `model`."""
    found = []
    for n, ((method, _), body) in enumerate(zip(proxy.seen, proxy.bodies, strict=True)):
        if method in WRITES and body:
            with contextlib.suppress(ValueError):
                if json.loads(body).get("name") == model:
                    found.append(n)
    return found
