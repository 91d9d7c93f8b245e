"""Local stand-ins for Grafana and a chat webhook on 127.0.0.1: they record what they are sent
(path, headers, JSON body), or fail (HTTP 500), or hang (accept and never answer)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes
    method: str = "POST"

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class StandIn:
    url: str
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@contextlib.contextmanager
def http_standin(status: int = 200, location: str | None = None) -> Iterator[StandIn]:
    """A server answering every POST (and GET) with status (and a Location header, for a
    redirect), recording each request."""
    standin = StandIn("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.do_POST()

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            length = int(self.headers.get("Content-Length", "0"))
            standin.received.append(Received(self.path, dict(self.headers.items()),
                                              self.rfile.read(length), self.command))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if location is not None:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(b'{"message": "ok"}')
            standin.arrived.set()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def hanging_standin() -> Iterator[StandIn]:
    """A server that accepts connections and never answers (a stuck chat server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    standin = StandIn(f"http://127.0.0.1:{listener.getsockname()[1]}")
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)
            standin.arrived.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
