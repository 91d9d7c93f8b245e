"""The one HTTP client of the deploy side, with a total deadline: connect, headers and body.

requests' `timeout` bounds each read, not the request: a server that answers 200 and then
trickles its body a byte a second never trips it, and a check, a verify or a ramp hangs on it.
Here a watchdog shuts the request's sockets down when the deadline passes, wherever the
request is blocked (connecting, reading the headers, reading the body), and the body is read
in chunks against the same monotonic deadline. What cannot finish in time raises
DeadlineExceeded, a requests.Timeout, so every caller's `except requests.RequestException`
already treats it as a failed request (never as a pass, never as a hang).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from federation_deploy.progress import redact_userinfo

_CHUNK = 64 * 1024
# the largest body one call reads: the answers we ask for (health JSON, the redirector's
# config, GitHub and Slack replies) are kilobytes; a server declaring or sending 1 GB must
# not make the CLI gather it in memory
MAX_BODY = 10 * 1024 * 1024


class DeadlineExceeded(requests.Timeout):
    """No complete answer within the deadline (a slow or trickling server)."""


class BodyTooLarge(requests.RequestException):
    """An answer larger than the call's max_body: refused without reading it (a failed
    request for every caller's `except requests.RequestException`)."""


@dataclass(frozen=True)
class HttpAnswer:
    """What a GET returned, reduced to what the callers read."""

    status: int
    text: str
    content: bytes = b""
    headers: Mapping[str, str] | None = None


class _Sockets:
    """The sockets one request opened, so that the watchdog can shut them down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.expired = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.append(sock)
            expired = self.expired
        if expired:  # opened after the deadline: never let it block
            _shut(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._open)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # shutdown (not close) wakes a recv blocked in another thread; the owner closes it
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _pools(sockets: _Sockets) -> dict[str, type[HTTPConnectionPool]]:
    """Connection pool classes whose connections register their raw socket with `sockets`."""

    def watched(base: type[HTTPConnection]) -> type[HTTPConnection]:
        class Watched(base):  # type: ignore[valid-type,misc]
            def _new_conn(self) -> socket.socket:
                sock: socket.socket = super()._new_conn()
                sockets.add(sock)
                return sock

        return Watched

    class Pool(HTTPConnectionPool):
        ConnectionCls = watched(HTTPConnection)

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = watched(HTTPSConnection)  # type: ignore[assignment]

    return {"http": Pool, "https": SecurePool}


class _Adapter(HTTPAdapter):
    def __init__(self, sockets: _Sockets) -> None:
        self._sockets = sockets
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pools(self._sockets)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # through HTTP(S)_PROXY too: the connection to the proxy is the one to cut
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _pools(self._sockets)
        return manager


def get(url: str, deadline: float, *, headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None, allow_redirects: bool = True,
        on_chunk: Callable[[bytes], bool] | None = None,
        max_body: int = MAX_BODY) -> HttpAnswer:
    """GET url and its whole body within `deadline` seconds in all; DeadlineExceeded (a
    requests.Timeout) when that cannot be done, other requests exceptions as requests raises
    them. on_chunk, when given, sees the body as it comes and may return True to stop reading
    (a stream read until an event). A body larger than max_body bytes (declared or sent)
    raises BodyTooLarge, a requests.RequestException."""
    return request("GET", url, deadline, headers=headers, params=params,
                   allow_redirects=allow_redirects, on_chunk=on_chunk, max_body=max_body)


def request(method: str, url: str, deadline: float, *,
            headers: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None,
            json_body: Any = None, allow_redirects: bool = True,
            on_chunk: Callable[[bytes], bool] | None = None,
            max_body: int = MAX_BODY) -> HttpAnswer:
    """One request (GET, POST, PUT, PATCH ...; json_body sent as JSON) and its whole answer
    within `deadline` seconds in all, as get() says."""
    if deadline <= 0:
        raise ValueError(f"deadline must be positive, got {deadline}")
    start = time.monotonic()
    end = start + deadline
    sockets = _Sockets()
    watchdog = threading.Timer(deadline, sockets.expire)
    watchdog.daemon = True
    session = requests.Session()
    adapter = _Adapter(sockets)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    watchdog.start()
    try:
        try:
            with session.request(method, url, headers=dict(headers or {}), params=params,
                                 json=json_body, stream=True, allow_redirects=allow_redirects,
                                 timeout=(deadline, deadline)) as response:
                _refuse_declared(response, url, max_body)
                body = bytearray()
                # read1: what has arrived, not a full chunk (a trickle would fill one slowly)
                while chunk := _read_some(response.raw):
                    body += chunk
                    if len(body) > max_body:
                        raise BodyTooLarge(_too_large(url, max_body))
                    if on_chunk is not None and on_chunk(chunk):
                        break
                    if time.monotonic() >= end:
                        raise DeadlineExceeded(_late(url, deadline))
                if sockets.expired:  # cut at the deadline: what was read is not the answer
                    raise DeadlineExceeded(_late(url, deadline))
                return HttpAnswer(response.status_code, bytes(body).decode(
                    response.encoding or "utf-8", errors="replace"), bytes(body),
                    dict(response.headers))
        except (DeadlineExceeded, BodyTooLarge):
            raise
        except requests.RequestException:
            if sockets.expired or time.monotonic() >= end:
                raise DeadlineExceeded(_late(url, deadline)) from None
            raise
    finally:
        watchdog.cancel()
        session.close()


def _read_some(raw: Any) -> bytes:
    """The next bytes of a body as urllib3 gives them, its errors as requests' (which every
    caller catches): a connection cut by the watchdog ends here."""
    try:
        return bytes(raw.read1(_CHUNK, decode_content=True))
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise requests.ConnectionError(str(exc) or type(exc).__name__) from None


def _late(url: str, deadline: float) -> str:
    # without the URL: every caller names the URL it asked already
    return f"no complete answer within {deadline:g}s"


def _refuse_declared(response: requests.Response, url: str, max_body: int) -> None:
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > max_body:
        raise BodyTooLarge(_too_large(url, max_body, declared=int(declared)))


def _too_large(url: str, max_body: int, *, declared: int | None = None) -> str:
    if declared is not None:
        return (f"{redact_userinfo(url)} declares a body of {declared} bytes, more than the "
                f"{max_body} bytes accepted: refused, not read")
    return (f"{redact_userinfo(url)} sent more than the {max_body} bytes accepted: "
            "reading stopped")
