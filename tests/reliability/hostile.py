"""Small hostile stand-ins on 127.0.0.1: a vendor that answers what an attacker wants, a proxy, a bare listener.

Each one records what reached it, so that a test can show that a credential did not (or that nothing
arrived at all). They serve only loopback and stop when their ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    """One request that reached a stand-in server."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})

    @classmethod
    def of_json(cls, value: Any, status: int = 200, **headers: str) -> Answer:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json", **headers})

    @classmethod
    def raw_json(cls, text: str, status: int = 200) -> Answer:
        return cls(status, text.encode())


SAILPOINT_TOKEN = "sp-hostile-test-token-0123456789"


class HostileServer:
    """An HTTP server whose answers a test chooses per request (``handler(seen) -> Answer``).

    For SailPoint, ``/oauth/token`` answers a token unless the handler takes it over.
    """

    def __init__(self, handler: Callable[[Seen], Answer | None] | None = None) -> None:
        self.handler = handler or (lambda seen: None)
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                owner.seen.append(seen)
                answer = owner.handler(seen)
                if answer is None and seen.path.endswith("/oauth/token"):
                    answer = Answer.of_json({"access_token": SAILPOINT_TOKEN, "expires_in": 3600})
                answer = answer or Answer()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def texts(self) -> str:
        """Everything that reached the server, as one text to search for a secret in."""
        return "\n".join(f"{s.method} {s.path} {s.headers!r} {s.body!r}" for s in self.seen)


class Listener:
    """A bare TCP listener on loopback that counts connections and keeps what they sent: an attacker's host."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._stop = threading.Event()

    def __enter__(self) -> Listener:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except OSError:
                continue
            self.connections += 1
            conn.settimeout(0.5)
            # Read what the client sends (headers, then a body) until it waits for an answer, then hang up.
            with contextlib.suppress(OSError):
                while chunk := conn.recv(65536):
                    self.received += chunk
            conn.close()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._socket.close()


@dataclass
class ProxySeen:
    first_lines: list[str] = field(default_factory=list)
    raw: bytes = b""


class RefusingProxy:
    """An HTTP proxy on loopback that records each request's first line and headers, then answers 403.

    A CONNECT to a real vendor host is refused, so no byte ever leaves the machine.
    """

    def __init__(self) -> None:
        self.seen = ProxySeen()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                owner.seen.first_lines.append(self.requestline)
                owner.seen.raw += f"{self.requestline}\n{self.headers}".encode()
                body = b"refused by the test proxy"
                self.send_response(403)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_CONNECT = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RefusingProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def connection(vendor: str, base_url: str, password: str = "hostile-test-secret-1", **extra: Any) -> dict[str, Any]:
    """An Airflow connection of ``vendor`` pointed at a stand-in server, with fast, few retries."""
    fast = {"base_url": base_url, "retry_initial_backoff": 0.01, "retry_max_backoff": 0.02, "max_attempts": 2}
    conn: dict[str, Any] = {
        "datadog": {
            "conn_type": "datadog_workflows",
            "host": "datadoghq.com",
            "password": password,
            "extra": {"application_key_secret": password + "-app"},
        },
        "cloudflare": {"conn_type": "cloudflare_workflows", "password": password, "extra": {"account_id": "acc1"}},
        "sailpoint": {
            "conn_type": "sailpoint_workflows",
            "host": "acme",
            "login": "client-1",
            "password": password,
            "extra": {},
        },
    }[vendor]
    conn["extra"] = {**conn["extra"], **fast, **extra}
    return conn
