"""A stand-in BinderHub member: answers /health, /versions and launches as BinderHub does.

Used by the redirector tests, the ramp tests, the benchmark and the sandbox demo. In-process:
`start_standin("gke")` runs one on 127.0.0.1 (a free port) in a background thread and returns
a handle. As a process: `python -m federation_deploy.sandbox.member --port N --name X`, steered over
HTTP with `PUT /_standin/state` (the same fields as StandinState).

Launches: `GET /build/<provider>/<spec>` is BinderHub's build API. With `Accept:
text/event-stream` it answers as BinderHub does, `data: {"phase": ...}` events ending in
`ready` or `failed` (the ramp's probes and warming read them); otherwise a JSON page naming the
member (the redirector's tests). Every launch is counted in `/metrics` as BinderHub counts it,
`binderhub_launch_time_seconds` by `status` (success, failure), with the launch time the
stand-in is told to report (`launch_seconds`: nothing sleeps) and every `failure_every`-th
launch failing (0: none), so tests and the sandbox get deterministic launch evidence.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import socket
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import tornado.iostream
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

DEFAULT_VERSIONS: dict[str, str] = {
    "binderhub": "1.0.0-0.dev.git.3170.h4e5ff4a",
    "builder": "2025.01.0",
}

log = logging.getLogger("federation_deploy.sandbox.member")

# BinderHub's launch-time histogram buckets (binderhub/builder.py), seconds
LAUNCH_TIME_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600,
                                          7200)


@dataclass
class StandinState:
    """What the stand-in answers; every field can be changed while it runs."""

    name: str
    healthy: bool = True  # the "Hub" check
    failing_check: str | None = None  # the name of one more service to report as failing
    versions: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_VERSIONS))
    total_pods: int = 5
    quota: int | None = 100
    delay: float = 0.0  # seconds before /health and /versions answer (timeouts)
    trickle: float = 0.0  # > 0: /health and /versions send their body a byte per this many s
    launch_seconds: float = 20.0  # the launch time reported for every launch
    failure_every: int = 0  # every n-th launch fails (0: none)
    launches: list[tuple[str, float]] = field(default_factory=list)  # (status, seconds)
    counts: Counter[str] = field(default_factory=Counter)  # health, versions, build, other
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def health_body(self) -> dict[str, Any]:
        """BinderHub's /health: a list of service checks, `ok` when all are."""
        checks: list[dict[str, Any]] = [
            {"service": "Hub", "ok": self.healthy},
            {"service": "Docker registry", "ok": True},
        ]
        quota_ok = self.quota is None or self.total_pods < self.quota
        checks.append(
            {
                "service": "Pod quota",
                "ok": quota_ok,
                "total_pods": self.total_pods,
                "build_pods": 0,
                "user_pods": self.total_pods,
                "quota": self.quota,
            }
        )
        if self.failing_check:
            checks.append({"service": self.failing_check, "ok": False})
        return {"ok": all(c["ok"] for c in checks), "checks": checks}

    def update(self, changes: dict[str, Any]) -> None:
        allowed = {"healthy", "failing_check", "versions", "total_pods", "quota", "delay",
                   "trickle", "launch_seconds", "failure_every"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown stand-in fields: {', '.join(sorted(unknown))}")
        with self.lock:
            for key, value in changes.items():
                setattr(self, key, value)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "name": self.name,
                "healthy": self.healthy,
                "failing_check": self.failing_check,
                "versions": self.versions,
                "total_pods": self.total_pods,
                "quota": self.quota,
                "delay": self.delay,
                "trickle": self.trickle,
                "launch_seconds": self.launch_seconds,
                "failure_every": self.failure_every,
                "counts": dict(self.counts),
            }

    def record_launch(self) -> tuple[bool, float]:
        """Count one launch: whether it succeeds (see failure_every) and its launch time."""
        with self.lock:
            number = len(self.launches) + 1
            ok = not (self.failure_every and number % self.failure_every == 0)
            self.launches.append(("success" if ok else "failure", self.launch_seconds))
            return ok, self.launch_seconds

    def metrics_text(self) -> str:
        """BinderHub's launch histogram, in the Prometheus text format."""
        name = "binderhub_launch_time_seconds"
        with self.lock:
            launches = list(self.launches)
        lines = [f"# HELP {name} Histogram of launch times", f"# TYPE {name} histogram"]
        for status in ("success", "failure"):
            times = [t for s, t in launches if s == status]
            for bound in LAUNCH_TIME_BUCKETS:
                count = sum(1 for t in times if t <= bound)
                lines.append(f'{name}_bucket{{le="{bound:g}",retries="0",status="{status}"}} '
                             f"{count}")
            lines.append(f'{name}_bucket{{le="+Inf",retries="0",status="{status}"}} '
                         f"{len(times)}")
            lines.append(f'{name}_count{{retries="0",status="{status}"}} {len(times)}')
            lines.append(f'{name}_sum{{retries="0",status="{status}"}} {sum(times)!r}')
        return "\n".join(lines) + "\n"


class _Handler(tornado.web.RequestHandler):
    def initialize(self, state: StandinState) -> None:
        self.state = state

    def count(self, kind: str) -> None:
        with self.state.lock:
            self.state.counts[kind] += 1

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    async def answer_check(self, data: Any, status: int = 200) -> None:
        """A check's answer: after `delay`, at once, or (trickle) the status and headers at
        once and then the body a byte at a time: a member that answers 200 but never finishes
        in useful time (issue 29)."""
        if self.state.delay:
            await asyncio.sleep(self.state.delay)
        if not self.state.trickle:
            self.write_json(data, status)
            return
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        text = json.dumps(data).encode()
        try:
            for index in range(len(text)):
                self.write(text[index:index + 1])
                await self.flush()
                await asyncio.sleep(self.state.trickle)
            self.finish()
        except tornado.iostream.StreamClosedError:
            pass  # the client gave up waiting


class HealthHandler(_Handler):
    async def get(self) -> None:
        self.count("health")
        body = self.state.health_body()
        await self.answer_check(body, 200 if body["ok"] else 503)


class VersionsHandler(_Handler):
    async def get(self) -> None:
        self.count("versions")
        await self.answer_check(self.state.versions)


class BuildHandler(_Handler):
    def get(self) -> None:
        self.count("build")
        ok, seconds = self.state.record_launch()
        if "text/event-stream" not in self.request.headers.get("Accept", ""):
            self.write_json({"member": self.state.name, "uri": self.request.uri})
            return
        # BinderHub's build API: an event stream ending in ready (or failed)
        self.set_header("Content-Type", "text/event-stream")
        events: list[dict[str, Any]] = [{"phase": "launching", "message": "Launching server"}]
        if ok:
            events.append({"phase": "ready", "message": f"ready after {seconds:g}s",
                           "url": f"{self.request.protocol}://{self.request.host}/user/x/",
                           "token": "stand-in"})
        else:
            events.append({"phase": "failed", "message": "Launch failed (stand-in)"})
        self.finish("".join(f"data: {json.dumps(e)}\n\n" for e in events))


class MetricsHandler(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4")
        self.finish(self.state.metrics_text())


class StateHandler(_Handler):
    def get(self) -> None:
        self.write_json(self.state.snapshot())

    def put(self) -> None:
        try:
            self.state.update(json.loads(self.request.body or b"{}"))
        except (ValueError, TypeError) as exc:
            self.write_json({"error": str(exc)}, 400)
            return
        self.write_json(self.state.snapshot())

    post = put


class OtherHandler(_Handler):
    """Any other page: says who answered and what it was sent (the redirector's proxy tests)."""

    def get(self) -> None:
        self.count("other")
        self.write_json(
            {
                "member": self.state.name,
                "uri": self.request.uri,
                "headers": dict(self.request.headers.get_all()),
            }
        )


def make_standin_app(state: StandinState) -> tornado.web.Application:
    deps = {"state": state}
    return tornado.web.Application(
        [
            (r"/health", HealthHandler, deps),
            (r"/versions", VersionsHandler, deps),
            (r"/build/.*", BuildHandler, deps),
            (r"/metrics", MetricsHandler, deps),
            (r"/_standin/state", StateHandler, deps),
            (r".*", OtherHandler, deps),
        ],
        log_function=lambda handler: None,
    )


class StandinHandle:
    """A stand-in running in a background thread; the setters are safe from any thread."""

    def __init__(self, state: StandinState, address: str, port: int) -> None:
        self.state = state
        self.name = state.name
        self.address = address
        self.port = port
        self.url = f"http://{address}:{port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    # control -------------------------------------------------------------------------------

    def set_healthy(self, healthy: bool) -> None:
        self.state.update({"healthy": healthy})

    def set_versions(self, versions: dict[str, Any]) -> None:
        self.state.update({"versions": dict(versions)})

    def set_quota(self, total_pods: int, quota: int | None) -> None:
        self.state.update({"total_pods": total_pods, "quota": quota})

    def set_trickle(self, seconds: float) -> None:
        """/health and /versions send their body a byte per `seconds` (0: at once)."""
        self.state.update({"trickle": seconds})

    def set_failing_check(self, service: str | None) -> None:
        self.state.update({"failing_check": service})

    def set_launches(self, seconds: float, failure_every: int = 0) -> None:
        """The launch time every launch reports, and every n-th launch failing (0: none)."""
        self.state.update({"launch_seconds": seconds, "failure_every": failure_every})

    def count(self, kind: str) -> int:
        """Requests received: "health", "versions", "build" or "other"."""
        with self.state.lock:
            return self.state.counts[kind]

    @property
    def build_count(self) -> int:
        return self.count("build")

    def reset_counts(self) -> None:
        with self.state.lock:
            self.state.counts.clear()

    def set_reachable(self, reachable: bool) -> None:
        """Stop listening (connections are refused) or listen again on the same port."""
        self._call(self._listen if reachable else self._unlisten)

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> StandinHandle:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            async def main() -> None:
                self._loop = asyncio.get_running_loop()
                self._stopped = asyncio.Event()
                try:
                    self._listen()
                except BaseException as exc:  # report a bind failure to the caller
                    errors.append(exc)
                    ready.set()
                    return
                ready.set()
                await self._stopped.wait()
                self._unlisten()
                if self._server is not None:
                    await self._server.close_all_connections()

            asyncio.run(main())

        self._thread = threading.Thread(target=run, name=f"standin-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None or self._stopped is None:
            return
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> StandinHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> None:
        if self._server is not None:
            return
        sockets = bind_sockets(self.port, self.address, family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        self.url = f"http://{self.address}:{self.port}"
        self._server = HTTPServer(make_standin_app(self.state))
        self._server.add_sockets(sockets)

    def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            asyncio.ensure_future(server.close_all_connections())

    def _call(self, fn: Any) -> None:
        """Run fn on the stand-in's loop and wait for it."""
        if self._loop is None:
            raise RuntimeError("stand-in not started")
        done = threading.Event()

        def wrapped() -> None:
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(wrapped)
        done.wait(10)


class StandinError(Exception):
    """A stand-in could not be read or changed."""


def standin_state(url: str, changes: dict[str, Any] | None = None,
                  timeout: float = 5.0) -> dict[str, Any]:
    """A stand-in's state (GET /_standin/state), changed first with changes (PUT)."""
    import requests

    where = url.rstrip("/") + "/_standin/state"
    try:
        answer = (requests.put(where, json=changes, timeout=timeout) if changes
                  else requests.get(where, timeout=timeout))
        body = answer.json()
    except (requests.RequestException, ValueError) as exc:
        raise StandinError(f"no stand-in answers at {where}: {exc}") from None
    if answer.status_code != 200 or not isinstance(body, dict):
        raise StandinError(f"{where} answered {answer.status_code}: {body}")
    return body


def start_standin(
    name: str = "standin",
    *,
    port: int = 0,
    address: str = "127.0.0.1",
    versions: dict[str, Any] | None = None,
    healthy: bool = True,
) -> StandinHandle:
    """Start a stand-in member in a background thread; port 0 picks a free port."""
    state = StandinState(name=name, healthy=healthy)
    if versions is not None:
        state.versions = dict(versions)
    return StandinHandle(state, address, port).start()


async def _run_forever(state: StandinState, address: str, port: int) -> None:
    sockets = bind_sockets(port, address)
    server = HTTPServer(make_standin_app(state))
    server.add_sockets(sockets)
    bound = sockets[0].getsockname()[1]
    print(f"stand-in {state.name} listening on http://{address}:{bound}", file=sys.stderr,
          flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    server.stop()
    await server.close_all_connections()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m federation_deploy.sandbox.member",
        description="A stand-in BinderHub member answering /health and /versions. Change what "
        "it answers with PUT /_standin/state, e.g. {\"healthy\": false}.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one, printed)")
    parser.add_argument("--name", default="standin", help="member name it reports")
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--versions", type=json.loads, default=None,
                        help="JSON object /versions answers (default: a fixed BinderHub build)")
    parser.add_argument("--unhealthy", action="store_true", help="start with a failing Hub check")
    args = parser.parse_args(argv)
    state = StandinState(name=args.name, healthy=not args.unhealthy)
    if args.versions is not None:
        state.versions = args.versions
    asyncio.run(_run_forever(state, args.address, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
