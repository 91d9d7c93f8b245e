"""Servers on 127.0.0.1 for tests: a directory over HTTP (a helm chart repository, say), and a
member that trickles its answers (a request that never ends in useful time)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        pass


@contextmanager
def serving(directory: Path) -> Iterator[str]:
    """Serve directory on a free port of 127.0.0.1; yields the base URL (no trailing slash)
    and stops the server on the way out."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True
    script: list[tuple[float, bytes]]
    stop: threading.Event


class _ScriptedHandler(BaseHTTPRequestHandler):
    """Answers every GET with the server's script: (seconds to wait, raw bytes to send) pairs,
    status line and headers included, so that a test decides what trickles and how."""

    server: _ScriptedServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        try:
            for delay, data in self.server.script:
                if delay and self.server.stop.wait(delay):
                    break
                self.wfile.write(data)
                self.wfile.flush()
        except OSError:
            pass  # the client gave up: what the test wants
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        pass


def http_head(body_length: int | None, status: int = 200) -> bytes:
    """A status line and headers (Content-Length when given) of a JSON answer."""
    head = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
    if body_length is not None:
        head += f"Content-Length: {body_length}\r\n"
    return (head + "\r\n").encode()


@contextmanager
def scripted(script: list[tuple[float, bytes]]) -> Iterator[str]:
    """A server on 127.0.0.1 that answers every GET by following script (see
    _ScriptedHandler); yields its base URL. Stopping it ends every answer at once."""
    server = _ScriptedServer(("127.0.0.1", 0), _ScriptedHandler)
    server.script = script
    server.stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def trickling(body: bytes = b'{"ok": true, "checks": []}', *, interval: float = 0.1,
              trickle_headers: bool = False,
              content_length: bool = True) -> AbstractContextManager[str]:
    """A server that answers every GET 200 and sends the body (with trickle_headers, the
    status line and headers too) one byte per `interval` seconds: a member that answers but
    never finishes in useful time."""
    head = http_head(len(body) if content_length else None)
    body_steps = [(interval, body[i:i + 1]) for i in range(len(body))]
    head_steps = ([(interval, head[i:i + 1]) for i in range(len(head))] if trickle_headers
                  else [(0.0, head)])
    return scripted(head_steps + body_steps)
