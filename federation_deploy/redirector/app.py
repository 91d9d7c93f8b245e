"""Builds the redirector application (make_app), reloads its config, and serves it (serve)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import signal
import time
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import tornado.web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPMessageDelegate, HTTPServerRequest
from tornado.log import access_log
from tornado.netutil import bind_sockets

from federation_deploy.redirector.config import (
    HostConfig,
    RedirectorConfig,
    RedirectorConfigError,
    load_config,
    loads_config,
)
from federation_deploy.redirector.handlers import LaunchRedirect, launch_target_ok, routes
from federation_deploy.redirector.health_checks import (
    Clock,
    Fetch,
    FetchResponse,
    HealthMonitor,
    SystemClock,
    check_client,
    tornado_fetch,
)
from federation_deploy.redirector.metrics import Metrics
from federation_deploy.redirector.routing import (
    REASON_RAMP,
    REASON_RENDEZVOUS,
    Choice,
    RoutingTable,
    build_table,
    cache_key,
    route,
)
from federation_deploy.redirector.sticky import DEFAULT_LAG, StickyRamp

log = logging.getLogger("federation_deploy.redirector")

GOLDEN = 0.6180339887498949  # 1/phi: the Weyl step with the most even spread of [0, 1)
# reasons of launches the routing chose itself (no cookie, not the all-unhealthy fallback)
_CHOSEN_BY_ROUTING = frozenset((REASON_RENDEZVOUS, REASON_RAMP))
# The sticky ramp's planning runs between requests in slices of this many seconds, and looks
# for work this often when it has none.
PLAN_SLICE = 0.0005
PLAN_IDLE = 0.01


class LaunchDraws:
    """Per-launch uniform draws in [0, 1): the golden-ratio sequence of a launch counter.

    Any uniform draw gives ramp members their share in expectation; this low-discrepancy one
    also keeps every window of n launches within about 1/n of it, so that a 1% ramp gets 1%
    and not 0.8% or 1.3% by the luck of the draw.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._x = start % 1.0

    def __call__(self) -> float:
        self._x = (self._x + GOLDEN) % 1.0
        return self._x


class ConfigWatcher:
    """Polls the config file; a changed, valid file is applied, an invalid one reported once.

    The file is read and compared whole on every poll (it is a few kilobytes): that sees
    Kubernetes' symlink swaps and same-second rewrites alike. A new invalid text is reported
    only once it is stable across two polls, so that a writer caught half-way through is not
    counted as a bad config.
    """

    def __init__(
        self,
        path: Path,
        *,
        current: RedirectorConfig,
        on_config: Callable[[RedirectorConfig], None],
        on_invalid: Callable[[RedirectorConfigError], None],
        on_restored: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self._current = current
        self._on_config = on_config
        self._on_invalid = on_invalid
        self._on_restored = on_restored
        self._text: str | None = None  # the text in force (None: not read yet)
        self._suspect: str | None = None  # invalid text seen once
        self._reported: str | None = None  # invalid text already reported

    def poll(self) -> str:
        """Look once: "unchanged", "reloaded", "pending" (invalid once), "invalid", or
        "restored" (after an invalid file, the file holds the config in force again: nothing
        to reload, but the rejection is over)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            text = f"\0unreadable: {exc}"
        if text == self._text and self._reported is not None:
            self._suspect = self._reported = None
            return self._restored()
        if text == self._text or text == self._reported:
            self._suspect = None
            return "unchanged"
        try:
            if text.startswith("\0"):
                raise RedirectorConfigError("", text[1:], str(self.path))
            config = loads_config(text, str(self.path))
        except RedirectorConfigError as exc:
            if text != self._suspect:
                self._suspect = text
                return "pending"
            self._suspect, self._reported = None, text
            self._on_invalid(exc)
            return "invalid"
        first = self._text is None
        rejected = self._reported is not None
        self._text, self._suspect, self._reported = text, None, None
        if first and config == self._current:  # the file make_app's config was loaded from
            return self._restored() if rejected else "unchanged"
        self._current = config
        self._on_config(config)
        return "reloaded"

    def _restored(self) -> str:
        """The file holds the config in force again after a rejected one."""
        if self._on_restored is not None:
            self._on_restored()
        return "restored"


class Redirector:
    """The live state behind the handlers: config, member health, routing table, counters.

    Nothing here is module-level: each make_app() builds its own, so tests run several
    redirectors in one process.
    """

    def __init__(
        self,
        config: RedirectorConfig,
        *,
        config_path: Path | None,
        clock: Clock,
        fetch: Fetch | None,
        rng: random.Random,
        draw: Callable[[], float],
        retry_delay: float,
        reload_interval: float,
        sticky_ramp: StickyRamp | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.clock = clock
        self.rng = rng
        self.draw = draw
        self.reload_interval = reload_interval
        self.metrics = Metrics()
        self.in_flight = 0
        self._expires: tuple[int, str] = (0, "")
        self._date: tuple[int, str] = (0, "")
        self._given_fetch = fetch
        self._fetch = fetch
        self._check_client: AsyncHTTPClient | None = None
        self._proxy_client: AsyncHTTPClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.started = False
        self.monitor = HealthMonitor(
            config,
            fetch=self._check_fetch,
            clock=clock,
            rng=rng,
            retry_delay=retry_delay,
            on_change=self.rebuild_table,
        )
        self.ramp = sticky_ramp if sticky_ramp is not None else StickyRamp(lag=DEFAULT_LAG)
        self.table: RoutingTable = build_table(
            config.hosts, frozenset(), config.load_balancer, config.ramp_policy
        )
        self.ramp.set_table(self.table)
        self.watcher = (
            ConfigWatcher(
                config_path,
                current=config,
                on_config=self.apply_config,
                on_invalid=self._config_rejected,
                on_restored=self._config_restored,
            )
            if config_path is not None
            else None
        )

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start health checks and the config watcher (needs a running event loop)."""
        if self.started:
            return
        self.started = True
        if self._fetch is None:
            self._check_client = check_client()
            self._fetch = tornado_fetch(self._check_client)
        self.monitor.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._plan_between_requests(), name="ramp-planner"))
        if self.watcher is not None:
            self.watcher.poll()
            self._tasks.append(loop.create_task(self._watch_config(), name="config-watcher"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.monitor.stop()
        for client in (self._check_client, self._proxy_client):
            if client is not None:
                client.close()
        self._check_client = self._proxy_client = None
        self._fetch = self._given_fetch
        self.started = False

    async def _check_fetch(self, url: str, timeout: float) -> FetchResponse:
        if self._fetch is None:
            raise RuntimeError("redirector not started")
        return await self._fetch(url, timeout)

    @property
    def proxy_client(self) -> AsyncHTTPClient:
        # separate from the checks' client: a burst of proxied pages must not queue checks
        if self._proxy_client is None:
            self._proxy_client = AsyncHTTPClient(force_instance=True, max_clients=64)
        return self._proxy_client

    async def _plan_between_requests(self) -> None:
        """The sticky ramp's estimate and checks, off the launch path (see StickyRamp).

        Real time, not self.clock: this shares the CPU with requests, it is no timed hold.
        """
        ramp = self.ramp
        while True:
            if ramp.pending:
                # longer slices once half the lag is gone: a check left to its due launch
                # would be done inside that request, all at once
                urgent = ramp.due_in < ramp.lag // 2
                try:
                    ramp.work(PLAN_SLICE * (4 if urgent else 1))
                except Exception:
                    log.exception("ramp planning crashed; the plan in force stays")
                    await asyncio.sleep(PLAN_IDLE)
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(PLAN_IDLE)

    # config --------------------------------------------------------------------------------

    async def _watch_config(self) -> None:
        assert self.watcher is not None
        while True:
            await self.clock.sleep(self.reload_interval)
            try:
                self.watcher.poll()
            except Exception:
                log.exception("config reload crashed; keeping the config in force")
                self.metrics.count_reload(False)

    def apply_config(self, config: RedirectorConfig) -> None:
        """Switch to a new config between two requests; health of unchanged members is kept."""
        old, self.config = self.config, config
        self.monitor.update_config(config)
        self.rebuild_table()
        self.metrics.count_reload(True)
        log.warning("config reloaded: %s", describe_change(old, config))

    def _config_rejected(self, error: RedirectorConfigError) -> None:
        self.metrics.count_reload(False)
        log.error("config not reloaded, the previous one stays in force: %s", error)

    def _config_restored(self) -> None:
        self.metrics.last_reload_ok = True
        log.warning("config file holds the config in force again: the rejected change is gone")

    # routing -------------------------------------------------------------------------------

    def rebuild_table(self) -> None:
        config = self.config
        table = build_table(
            config.hosts, self.monitor.healthy(), config.load_balancer, config.ramp_policy,
            last_resort=self.monitor.reference.name,
        )
        if table.fallback and not self.table.fallback and any(
            s.checked for s in self.monitor.statuses().values()
        ):
            log.warning("no member is healthy: sending every launch to %s",
                        ", ".join(c.name for c in table.candidates))
        self.ramp.set_table(table)
        self.table = table

    def route(self, path: str, cookie: str | None) -> Choice:
        choice = route(self.table, path, cookie, self.draw, self.ramp.plan)
        if choice.reason in _CHOSEN_BY_ROUTING:
            # a launch the routing chose (no cookie, no fallback): it counts for popularity,
            # under either ramp policy, so that a ramp that starts finds the estimate warm
            self.ramp.count(cache_key(path))
        return choice

    def http_date(self) -> str:
        """The Date header of now, formatted once a second."""
        now = int(time.time())
        cached = self._date
        if cached[0] != now:
            cached = self._date = (now, formatdate(now, usegmt=True))
        return cached[1]

    def cookie_lifetime(self) -> tuple[int, str]:
        """(Max-Age, Expires) of the `host` cookie; the date is formatted once a second."""
        max_age = int(self.config.host_cookie_age_hours * 3600)
        expires_at = int(self.clock.time()) + max_age
        cached = self._expires
        if cached[0] != expires_at:
            cached = self._expires = (expires_at, formatdate(expires_at, usegmt=True))
        return max_age, cached[1]

    def proxy_host(self) -> HostConfig:
        """The prime while it is healthy; else the healthy member with the highest weight."""
        healthy = self.monitor.healthy()
        primes = self.config.primes
        for prime in primes:
            if prime.name in healthy:
                return prime
        others = [h for h in self.config.hosts if h.name in healthy]
        if others:
            return max(others, key=lambda h: h.weight)
        return self.config.host(self.monitor.reference.name) or primes[0]

    def active_hosts(self) -> dict[str, dict[str, Any]]:
        healthy = self.monitor.healthy()
        return {h.name: h.as_json() for h in self.config.hosts if h.name in healthy}

    def health_report(self) -> dict[str, Any]:
        statuses = self.monitor.statuses()
        reference = self.monitor.reference
        return {
            "ok": True,
            # any fallback in force: no member healthy (the primes take every launch), or a
            # member acting for an unhealthy prime; each said on its own below
            "fallback": self.table.fallback or not reference.prime,
            "routing_fallback": self.table.fallback,
            "prime_fallback": not reference.prime,
            # the versions reference and last resort: the prime, or who acts for it and why
            "reference": reference.as_json(),
            "config_reload_ok": self.metrics.last_reload_ok,
            "members": {
                name: {"healthy": s.healthy, "reason": s.reason, "message": s.message}
                for name, s in statuses.items()
            },
        }


def describe_change(old: RedirectorConfig, new: RedirectorConfig) -> str:
    """One line for the log: which members came, went or changed weight."""
    parts = []
    for host in new.hosts:
        before = old.host(host.name)
        if before is None:
            final = "" if host.final_weight is None else f", final weight {host.final_weight:g}"
            parts.append(f"+{host.name} (weight {host.weight:g}{final})")
        elif before != host:
            parts.append(_host_change(before, host))
    parts += [f"-{h.name}" for h in old.hosts if new.host(h.name) is None]
    if old.check != new.check:
        parts.append("check settings")
    if old.load_balancer != new.load_balancer:
        parts.append(f"load balancer {new.load_balancer}")
    if old.ramp_policy != new.ramp_policy:
        parts.append(f"ramp policy {new.ramp_policy}")
    if old.generation != new.generation:
        parts.append(f"generation {old.generation} -> {new.generation}")
    if old.accepted_versions != new.accepted_versions:
        parts.append(f"accepted versions {dict(new.accepted_versions or {})}")
    return ", ".join(parts) or "no effective change"


def _host_change(before: HostConfig, host: HostConfig) -> str:
    """`gamma weight 1 -> 5 (ramp), final weight 20 -> 30`: what changed of one member."""
    changed = []
    if before.weight != host.weight or before.final_weight == host.final_weight:
        # the weight line unless only the final weight changed (a url or health change keeps
        # its old wording: the weight line)
        changed.append(f"weight {before.weight:g} -> {host.weight:g}"
                       + (" (ramp)" if host.ramp else ""))
    if before.final_weight != host.final_weight:
        # the sticky ramp picks the member's repositories for its final weight: a change moves
        # some of them, so the log says so
        changed.append(f"final weight {_maybe(before.final_weight)} -> "
                       f"{_maybe(host.final_weight)}")
    return f"{host.name} " + ", ".join(changed)


def _maybe(weight: float | None) -> str:
    return "none" if weight is None else f"{weight:g}"


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log: errors loudly, the thousands of redirects per second only at debug level."""
    log_answer(handler.request, handler.get_status())


def log_answer(request: HTTPServerRequest, status: int) -> None:
    if status >= 500:
        level = logging.ERROR
    elif status >= 400:
        level = logging.WARNING
    else:
        level = logging.DEBUG
    if access_log.isEnabledFor(level):
        access_log.log(
            level, "%d %s %s (%s) %.1fms", status, request.method, request.uri,
            request.remote_ip, 1000 * request.request_time(),
        )


class RedirectorApplication(tornado.web.Application):
    """The tornado application; `redirector` holds its state.

    listen() also starts the health checks and the config watcher; with an HTTPServer of
    your own, call start(). stop() ends them.
    """

    def __init__(self, redirector: Redirector) -> None:
        self.redirector = redirector
        super().__init__(routes(redirector), log_function=log_request, compress_response=False)

    # tornado types the result as its own delegate; its router takes any HTTPMessageDelegate
    def find_handler(  # type: ignore[override]
        self, request: HTTPServerRequest, **kwargs: Any
    ) -> HTTPMessageDelegate:
        """Launches (GET /build/... with a well-formed target) skip the RequestHandler."""
        if (request.method == "GET" and request.path.startswith("/build/")
                and launch_target_ok(request.uri)):
            return LaunchRedirect(self.redirector, request, log_answer)
        return super().find_handler(request, **kwargs)

    def start(self) -> None:
        self.redirector.start()

    async def stop(self) -> None:
        await self.redirector.stop()

    def listen(self, port: int, address: str | None = None, **kwargs: Any) -> HTTPServer:
        kwargs.setdefault("xheaders", True)  # https behind an ingress: X-Forwarded-Proto
        server = super().listen(port, address, **kwargs)
        self.start()
        return server


# What stops the redirector gracefully: SIGHUP too (a closed terminal), as everywhere in the
# package (signals.TERMINATING; the redirector imports nothing of the package)
_STOPPING = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def make_app(
    config: RedirectorConfig,
    *,
    config_path: str | Path | None = None,
    clock: Clock | None = None,
    fetch: Fetch | None = None,
    rng: random.Random | None = None,
    draw: Callable[[], float] | None = None,
    retry_delay: float = 1.0,
    reload_interval: float = 0.5,
    sticky_ramp: StickyRamp | None = None,
) -> RedirectorApplication:
    """Build a redirector for `config`.

    config_path: watched for changes (hot reload) when given.
    clock: time and sleep for checks, reloads and cookie expiry (default: the real ones).
    fetch: (url, timeout) -> FetchResponse for the health checks (default: tornado's client).
    rng: jitter and the start of the launch draws; draw: one uniform [0, 1) per cookie-less
    launch (default: LaunchDraws, see there). retry_delay: pause between attempts of a check
    that got no answer. reload_interval: seconds between looks at config_path.
    sticky_ramp: the popularity estimate and plan of the sticky ramp policy (default: a new
    StickyRamp with the measured defaults).
    """
    rng = rng if rng is not None else random.Random()
    redirector = Redirector(
        config,
        config_path=Path(config_path) if config_path is not None else None,
        clock=clock if clock is not None else SystemClock(),
        fetch=fetch,
        rng=rng,
        draw=draw if draw is not None else LaunchDraws(rng.random()),
        retry_delay=retry_delay,
        reload_interval=reload_interval,
        sticky_ramp=sticky_ramp,
    )
    return RedirectorApplication(redirector)


def serve(
    config_path: str | Path,
    port: int = 8080,
    address: str = "0.0.0.0",
    *,
    shutdown_timeout: float = 10.0,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Run the redirector until SIGTERM or SIGINT, then finish in-flight requests and stop.

    Raises RedirectorConfigError when config_path is invalid at start (a later bad edit is
    only logged and counted). on_listening gets the bound port (useful with port 0).
    """
    config = load_config(config_path)
    asyncio.run(_serve(config, Path(config_path), port, address, shutdown_timeout, on_listening))


async def _serve(
    config: RedirectorConfig,
    config_path: Path,
    port: int,
    address: str,
    shutdown_timeout: float,
    on_listening: Callable[[int], None] | None,
) -> None:
    app = make_app(config, config_path=config_path)
    # what start-up built lives as long as the process: out of the collector's sight, a full
    # collection walks only what requests allocate (a pause of a few ms otherwise)
    gc.collect()
    gc.freeze()
    server = HTTPServer(app, xheaders=True)
    sockets = bind_sockets(port, address)
    server.add_sockets(sockets)
    bound = sockets[0].getsockname()[1]
    app.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in _STOPPING:
        loop.add_signal_handler(signum, stopping.set)
    log.info(
        "federation redirector listening on http://%s:%d (members: %s; primes: %s)",
        address, bound, ", ".join(h.name for h in config.hosts),
        ", ".join(h.name for h in config.primes),
    )
    if on_listening is not None:
        on_listening(bound)
    try:
        await stopping.wait()
        log.info("shutting down: no new connections, finishing %d request(s)",
                 app.redirector.in_flight)
        server.stop()
        deadline = loop.time() + shutdown_timeout
        while app.redirector.in_flight > 0 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await server.close_all_connections()
    finally:
        for signum in _STOPPING:
            loop.remove_signal_handler(signum)
        await app.stop()
    log.info("federation redirector stopped")
