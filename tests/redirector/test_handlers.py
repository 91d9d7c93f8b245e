"""Handlers: a launch answered without a RequestHandler is the answer the handler gives."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from federation_deploy.redirector.app import log_request
from federation_deploy.redirector.handlers import routes
from federation_deploy.sandbox.member import StandinHandle

from .conftest import Client, RedirectorServer

Federation = Callable[..., tuple[RedirectorServer, dict[str, StandinHandle], Path]]
WEIGHTS = {"gke": 60.0, "ovh": 30.0, "gesis": 10.0}


def handler_only(server: RedirectorServer) -> Client:
    """The same redirector behind tornado's plain Application (every /build/ request goes to
    BuildRedirectHandler), served by the server's own event loop."""
    plain = tornado.web.Application(routes(server.redirector), log_function=log_request,
                                    compress_response=False)
    sockets = bind_sockets(0, "127.0.0.1")
    added = threading.Event()

    def add() -> None:
        HTTPServer(plain, xheaders=True).add_sockets(sockets)
        added.set()

    assert server._loop is not None
    server._loop.call_soon_threadsafe(add)
    assert added.wait(5)
    return Client(f"http://127.0.0.1:{sockets[0].getsockname()[1]}")


def comparable(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers minus what depends on the second the answer was made in."""
    kept = [(name, re.sub(r"expires=[^;]*;", "", value)) for name, value in headers
            if name != "Date"]
    return sorted(kept)


def test_a_launch_is_answered_as_the_handler_answers_it(federation: Federation) -> None:
    server, members, _ = federation(WEIGHTS, primes=("gke",))
    plain = handler_only(server)
    asks: list[tuple[dict[str, str], str | None]] = [
        ({}, None),
        ({"X-Forwarded-Proto": "https"}, None),  # the cookie is Secure
        ({}, members["gesis"].url),  # the cookie keeps the browser
        ({}, "https://elsewhere.test"),  # a cookie naming no member: routing decides
    ]
    for headers, cookie in asks:
        for path in ("/build/gh/Org/Repo/HEAD?urlpath=lab", "/build/gh/a/b;x=1/main"):
            fast = server.get(path, headers=headers, cookie=cookie)
            slow = plain.get(path, headers=headers, cookie=cookie)
            assert fast.status == slow.status == 307
            assert fast.header("Date") and slow.header("Date")
            assert comparable(fast.header_list) == comparable(slow.header_list)
    plain.close()
    assert server.metric('federation_redirect_count{member="gesis"}') == 4


def raw_head(port: int, target: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The status line and headers answered to a GET of target sent as raw bytes (what
    http.client refuses to send: bytes that are not ASCII)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: mybinder.org\r\n"
                     b"Connection: close\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    status, *lines = answer.split(b"\r\n\r\n")[0].split(b"\r\n")
    return status, [(name, value) for name, _, value in (line.partition(b": ")
                                                          for line in lines)]


def test_raw_non_ascii_bytes_are_answered_as_the_handler_and_mybinder_answer(
        federation: Federation) -> None:
    """A target with raw UTF-8 bytes (é unescaped): Location is the target read as latin-1
    and written as UTF-8 (tornado's redirect, so mybinder's app: é doubly encoded), the
    cookie's Path the bytes as sent (as mybinder's set_cookie writes them)."""
    server, _, _ = federation(WEIGHTS, primes=("gke",))
    plain = handler_only(server)
    target = b"/build/gh/org/r\xc3\xa9po/HEAD?urlpath=caf\xc3\xa9"
    answers = [raw_head(port, target) for port in (server.port, plain.port)]
    plain.close()
    (fast_status, fast), (slow_status, slow) = answers
    assert fast_status == slow_status == b"HTTP/1.1 307 Temporary Redirect"

    def kept(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return sorted((n, re.sub(rb"expires=[^;]*;", b"", v)) for n, v in headers
                      if n != b"Date")

    assert kept(fast) == kept(slow)
    location = dict(fast)[b"Location"]
    assert location.endswith(b"/build/gh/org/r\xc3\x83\xc2\xa9po/HEAD?urlpath=caf\xc3\x83\xc2\xa9")
    assert b"; Path=/build/gh/org/r\xc3\xa9po/HEAD;" in dict(fast)[b"Set-Cookie"]


def status_of(server: RedirectorServer, request_line: str) -> int:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"{request_line}\r\nHost: mybinder.org\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n".encode())
        head = sock.recv(65536).decode("latin1")
    return int(head.split(" ", 2)[1])


def test_what_is_no_plain_launch_still_goes_to_the_handler(federation: Federation) -> None:
    server, _, _ = federation(WEIGHTS, primes=("gke",))
    assert status_of(server, "GET /build/gh/a/b/HEAD\x7f HTTP/1.1") == 400  # control character
    assert status_of(server, "GET http://evil.example/build/gh/a/b/HEAD HTTP/1.1") == 400
    # other methods: the handler has only get()
    assert status_of(server, "POST /build/gh/a/b/HEAD HTTP/1.1") == 405
    assert status_of(server, "HEAD /build/gh/a/b/HEAD HTTP/1.1") == 405
    assert status_of(server, "GET /build/gh/a/b/HEAD HTTP/1.1") == 307
