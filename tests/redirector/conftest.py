"""Fixtures: a real redirector and stand-in members on 127.0.0.1 free ports, each in a thread."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from federation_deploy.redirector import make_app, parse_config
from federation_deploy.redirector.app import Redirector, RedirectorApplication
from federation_deploy.redirector.config import RedirectorConfig
from federation_deploy.sandbox.member import StandinHandle, start_standin

# Fast but not hair-trigger: a check every 0.2 s, a failed member rechecked after 0.5 s.
FAST_CHECK = {"period": 0.2, "jitter": 0.1, "retries": 2, "timeout": 1, "failed_period": 0.5}
DEADLINE = 10.0  # seconds any polled condition may take before a test fails


def wait_until(
    condition: Callable[[], Any], timeout: float = DEADLINE, interval: float = 0.02
) -> Any:
    """Poll condition until it is truthy (and return it); fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write like Kubernetes or `redirector config --output`: whole file at once, by rename."""
    text = data if isinstance(data, str) else json.dumps(data, indent=2)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def hosts_config(members: dict[str, tuple[StandinHandle, float]], *, primes: tuple[str, ...],
                 ramp: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """config.json data for stand-ins: {name: (stand-in, weight)}."""
    hosts = {
        name: {"url": s.url, "weight": weight, "prime": name in primes, "ramp": name in ramp}
        for name, (s, weight) in members.items()
    }
    return {"hosts": hosts, "check": dict(FAST_CHECK), "load_balancer": "rendezvous",
            "pod_headroom": 10, "host_cookie_age_hours": 4, **extra}


class Response:
    """What a test looks at in an answer: status, headers (case-insensitive get), body."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.header_list = headers
        self.body = body

    def header(self, name: str) -> str | None:
        for key, value in self.header_list:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def location(self) -> str:
        value = self.header("Location")
        assert value is not None, f"no Location in {self.status} answer"
        return value


class Client:
    """A keep-alive HTTP/1.1 client without a cookie jar (cookies are passed explicitly).

    http.client rather than requests: thousands of launches per test stay fast, and the
    request target is sent exactly as written (needed for the open-redirect attempts).
    """

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._conn: http.client.HTTPConnection | None = None

    def get(self, target: str, headers: dict[str, str] | None = None,
            cookie: str | None = None) -> Response:
        sent = dict(headers or {})
        if cookie is not None:
            sent["Cookie"] = f"host={cookie}"
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self._conn.putrequest("GET", target, skip_host="Host" in sent,
                                      skip_accept_encoding=True)
                for key, value in sent.items():
                    self._conn.putheader(key, value)
                self._conn.endheaders()
                raw = self._conn.getresponse()
                return Response(raw.status, raw.getheaders(), raw.read())
            except (ConnectionError, http.client.HTTPException):
                self.close()  # the server closed an idle keep-alive connection: once more
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class RedirectorServer:
    """make_app() served on 127.0.0.1:<free port> by an event loop in a background thread."""

    def __init__(self, config: RedirectorConfig, **kwargs: Any) -> None:
        self.config = config
        self.kwargs = kwargs
        self.port = 0
        self.app: RedirectorApplication | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.client: Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redirector(self) -> Redirector:
        assert self.app is not None
        return self.app.redirector

    def start(self) -> RedirectorServer:
        ready = threading.Event()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.app = make_app(self.config, **self.kwargs)
            sockets = bind_sockets(0, "127.0.0.1")
            self.port = sockets[0].getsockname()[1]
            server = HTTPServer(self.app, xheaders=True)
            server.add_sockets(sockets)
            self.app.start()
            ready.set()
            await self._stop.wait()
            server.stop()
            await server.close_all_connections()
            await self.app.stop()

        self._thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
        self._thread.start()
        assert ready.wait(10), "redirector did not start"
        self.client = Client(self.url)
        return self

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
            self._thread = None

    def get(self, target: str, **kwargs: Any) -> Response:
        assert self.client is not None
        return self.client.get(target, **kwargs)

    def active(self) -> set[str]:
        return set(self.get("/active_hosts").json()["active_hosts"])

    def metrics(self) -> str:
        return self.get("/metrics").body.decode()

    def metric(self, line_prefix: str) -> float | None:
        """The value of the first /metrics sample line starting with line_prefix."""
        for line in self.metrics().splitlines():
            if line.startswith(line_prefix):
                return float(line.rsplit(" ", 1)[1])
        return None

    def launch_member(self, target: str, cookie: str | None = None) -> str:
        """Which stand-in a launch is sent to, by the Location's port."""
        response = self.get(target, cookie=cookie)
        assert response.status == 307, (response.status, response.body[:200])
        return self.member_of(response.location)

    def member_of(self, location: str) -> str:
        netloc = urlsplit(location).netloc
        for host in self.redirector.config.hosts:
            if urlsplit(host.url).netloc == netloc:
                return host.name
        raise AssertionError(f"redirected outside the federation: {location}")


@pytest.fixture
def standins() -> Iterator[Callable[..., StandinHandle]]:
    """Factory: standins("gke") starts a stand-in member; all are stopped after the test."""
    started: list[StandinHandle] = []

    def start(name: str, **kwargs: Any) -> StandinHandle:
        handle = start_standin(name, **kwargs)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def redirector_server() -> Iterator[Callable[..., RedirectorServer]]:
    """Factory: redirector_server(config_data_or_config, **make_app kwargs) -> started server."""
    servers: list[RedirectorServer] = []

    def start(config: dict[str, Any] | RedirectorConfig, **kwargs: Any) -> RedirectorServer:
        parsed = config if isinstance(config, RedirectorConfig) else parse_config(config)
        kwargs.setdefault("retry_delay", 0.05)
        kwargs.setdefault("rng", random.Random(1234))
        server = RedirectorServer(parsed, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def federation(
    standins: Callable[..., StandinHandle],
    redirector_server: Callable[..., RedirectorServer],
    tmp_path: Path,
) -> Callable[..., tuple[RedirectorServer, dict[str, StandinHandle], Path]]:
    """Factory: a redirector in front of stand-ins, its config in a watched file.

    federation({"gke": 60, "ovh": 30, "gesis": 10}, primes=("gke",)) returns (server,
    {name: stand-in}, config path), after every member has passed its first check.
    settings: more top-level config.json keys (e.g. ramp_policy); other keyword arguments go
    to make_app.
    """

    def build(
        weights: dict[str, float],
        *,
        primes: tuple[str, ...] = (),
        ramp: tuple[str, ...] = (),
        wait_healthy: bool = True,
        settings: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> tuple[RedirectorServer, dict[str, StandinHandle], Path]:
        members = {name: standins(name) for name in weights}
        primes = primes or (next(iter(weights)),)
        data = hosts_config({n: (members[n], w) for n, w in weights.items()}, primes=primes,
                            ramp=ramp, **(settings or {}))
        path = tmp_path / "config.json"
        write_json_atomic(path, data)
        kwargs.setdefault("config_path", path)
        server = redirector_server(data, **kwargs)
        if wait_healthy:
            expected = {n for n, w in weights.items() if w > 0 or n in primes}
            wait_until(lambda: server.active() == expected)
        return server, members, path

    return build
