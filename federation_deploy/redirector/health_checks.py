"""Health checks of federation members: small async checks and the monitor that schedules them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tornado.httpclient import AsyncHTTPClient

from federation_deploy.redirector.config import CheckConfig, HostConfig, RedirectorConfig
from federation_deploy.redirector.criteria import (
    POD_QUOTA,
    REASON_HEALTH,
    REASON_UNCHECKED,
    REASON_UNREACHABLE,
    REASON_VERSIONS,
    evaluate_health,
    evaluate_versions,
)
from federation_deploy.redirector.reference import (
    HEALTHY,
    UNFIT,
    VERSIONS_ONLY,
    Reference,
    ReferenceKeeper,
)

__all__ = [
    "POD_QUOTA", "REASON_HEALTH", "REASON_UNCHECKED", "REASON_UNREACHABLE", "REASON_VERSIONS",
    "evaluate_health", "evaluate_versions",
]

log = logging.getLogger("federation_deploy.redirector.health_checks")

# Health-check requests in flight at once: the check client's connections (app.py). More
# would wait in tornado's own queue, where the wait counts against the request's timeout
# ("Timeout in request queue"): 2,000 members checked at once failed a third of them.
CHECK_CONNECTIONS = 32
# The largest /health or /versions body read (tornado's default is 100 MB, buffered whole, on
# each of the 32 connections): a member answering more fails its check instead.
MAX_CHECK_BODY = 10 * 1024 * 1024


def check_client() -> AsyncHTTPClient:
    """The health checks' own HTTP client: CHECK_CONNECTIONS at once, bodies capped."""
    return AsyncHTTPClient(force_instance=True, max_clients=CHECK_CONNECTIONS,
                           max_body_size=MAX_CHECK_BODY)


# The redirector's own clock, not durations.Clock: it is async (the tornado loop must not block)
# and the redirector imports nothing else of the package.
class Clock(Protocol):
    """Time as the redirector sees it; tests pass a fake so that nothing really sleeps."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (cookie expiry, last-check timestamps)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class FetchResponse:
    code: int
    body: bytes


class FetchConnectionError(Exception):
    """No HTTP answer at all (refused, reset, DNS, timeout): the only failure that is retried."""


Fetch = Callable[[str, float], Awaitable[FetchResponse]]


def tornado_fetch(client: AsyncHTTPClient) -> Fetch:
    """A Fetch over a tornado AsyncHTTPClient: (url, timeout) -> FetchResponse. tornado's
    request_timeout bounds the whole request (connect, headers and body), not one read: a
    member that trickles its answer fails at `timeout` (tested)."""

    async def fetch(url: str, timeout: float) -> FetchResponse:
        try:
            response = await client.fetch(
                url, request_timeout=timeout, connect_timeout=timeout, raise_error=False
            )
        except Exception as exc:  # tornado raises OSError, StreamClosedError, HTTPClientError 599
            raise FetchConnectionError(f"{url}: {exc}") from exc
        if response.code == 599:
            raise FetchConnectionError(f"{url}: {response.error}")
        return FetchResponse(response.code, response.body or b"")

    return fetch


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check of one member."""

    healthy: bool
    reason: str = ""  # "" when healthy, else the check that failed ("versions", "Hub", ...)
    message: str = ""
    checks: Mapping[str, bool] = field(default_factory=dict)  # "versions" and each service
    versions: Any = None  # what /versions answered, None when it did not answer valid JSON
    health_ok: bool = False  # /health passed (whatever the versions): reference.py ranks it


@dataclass(frozen=True)
class MemberStatus:
    """What the monitor currently knows about a member."""

    healthy: bool = False
    checked: bool = False  # has completed at least one check (until then: no traffic)
    reason: str = REASON_UNCHECKED
    message: str = "not checked yet"
    checks: Mapping[str, bool] = field(default_factory=dict)
    health_ok: bool = False


def next_check_delay(healthy: bool, check: CheckConfig, u: float) -> float:
    """Seconds until the next check: period (or failed_period) times 1 + jitter * (0.5 - u)."""
    base = check.period if healthy else check.failed_period
    return base * (1 + check.jitter * (0.5 - u))


async def fetch_with_retries(
    fetch: Fetch, url: str, *, timeout: float, attempts: int, retry_delay: float, clock: Clock
) -> FetchResponse:
    """One request; repeated (up to `attempts` in all) only when there was no HTTP answer."""
    for attempt in range(1, attempts + 1):
        try:
            return await fetch(url, timeout)
        except FetchConnectionError as exc:
            if attempt >= attempts:
                raise
            log.warning("%s (attempt %d of %d)", exc, attempt, attempts)
            await clock.sleep(retry_delay)
    raise AssertionError("unreachable")  # pragma: no cover - attempts >= 1


def _json(response: FetchResponse) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        return None


async def check_member(
    host: HostConfig,
    *,
    check: CheckConfig,
    pod_headroom: int,
    reference_versions: Any,
    fetch: Fetch,
    accepted_versions: Mapping[str, Sequence[str]] | None = None,
    clock: Clock,
    retry_delay: float = 1.0,
) -> CheckResult:
    """Check one member once: GET /versions and /health (concurrently), one request each.

    `reference_versions` is the prime's /versions (None for a prime itself, or when unknown);
    `accepted_versions` a rollout's published set (None for a prime itself, or no rollout).
    """

    async def get(url: str) -> FetchResponse:
        return await fetch_with_retries(
            fetch, url, timeout=check.timeout, attempts=check.retries,
            retry_delay=retry_delay, clock=clock,
        )

    got_versions, got_health = await asyncio.gather(
        get(host.versions), get(host.health), return_exceptions=True
    )
    for got in (got_versions, got_health):
        if isinstance(got, BaseException) and not isinstance(got, Exception):
            raise got  # cancellation and the like are not check results

    checks: dict[str, bool] = {}
    failures: list[tuple[str, str]] = []
    versions: Any = None
    if isinstance(got_versions, FetchResponse):
        body = _json(got_versions)
        if got_versions.code != 200 or not isinstance(body, dict):
            failures.append((REASON_VERSIONS, f"/versions answered HTTP {got_versions.code}"))
        else:
            versions = body
            mismatch = evaluate_versions(body, reference_versions, accepted_versions)
            if mismatch:
                failures.append((REASON_VERSIONS, mismatch))
        checks[REASON_VERSIONS] = not failures
    else:
        checks[REASON_VERSIONS] = False
        failures.append((REASON_UNREACHABLE, str(got_versions)))

    health_ok = False
    if isinstance(got_health, FetchResponse):
        oks, failed, message = evaluate_health(got_health.code, _json(got_health), pod_headroom)
        checks.update(oks)
        if failed is not None:
            failures.append((failed, message))
        health_ok = failed is None
    else:
        failures.append((REASON_UNREACHABLE, str(got_health)))

    if not failures:
        return CheckResult(True, checks=checks, versions=versions, health_ok=True)
    # an unreachable member is reported as such even if the other endpoint answered
    failures.sort(key=lambda f: f[0] != REASON_UNREACHABLE)
    reason, message = failures[0]
    return CheckResult(False, reason, message, checks, versions,
                       health_ok=health_ok and versions is not None)


def _identity(host: HostConfig) -> tuple[str, str, str, bool]:
    """What, when it changes, makes an earlier check of the member meaningless."""
    return (host.url, host.health, host.versions, host.prime)


class HealthMonitor:
    """Checks every member on its own schedule and keeps their status.

    A member is checked every `period` (with jitter) while healthy, every `failed_period` while
    not; it receives no traffic before it has passed a check. The primes are checked first so
    that the others are compared with the prime's versions from the start.

    Paced: at most `max_in_flight` requests at once (the rest wait here, where waiting costs
    no timeout), and when there are more members than that, their first checks are spread
    over one period (later checks keep the spread, with jitter).
    """

    def __init__(
        self,
        config: RedirectorConfig,
        *,
        fetch: Fetch,
        clock: Clock,
        rng: random.Random,
        retry_delay: float = 1.0,
        on_change: Callable[[], None] | None = None,
        max_in_flight: int = CHECK_CONNECTIONS,
    ) -> None:
        self._config = config
        self._given_fetch = fetch
        self._max_in_flight = max_in_flight
        self._slots: asyncio.Semaphore | None = None  # made on the running loop
        self._clock = clock
        self._rng = rng
        self._retry_delay = retry_delay
        self._on_change = on_change
        self._status: dict[str, MemberStatus] = {h.name: MemberStatus() for h in config.hosts}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._prime_versions: Any = None  # the acting reference's versions (reference.py)
        self._versions: dict[str, Any] = {}  # each member's last /versions answer
        self.references = ReferenceKeeper()
        self._primes_done = asyncio.Event()
        self.check_counts: Counter[tuple[str, bool]] = Counter()
        self._choose_reference()

    @property
    def config(self) -> RedirectorConfig:
        return self._config

    @property
    def prime_versions(self) -> Any:
        return self._prime_versions

    def status(self, name: str) -> MemberStatus:
        return self._status.get(name, MemberStatus())

    def statuses(self) -> dict[str, MemberStatus]:
        return dict(self._status)

    def healthy(self) -> frozenset[str]:
        return frozenset(name for name, s in self._status.items() if s.healthy)

    async def _fetch(self, url: str, timeout: float) -> FetchResponse:
        """One request once a slot is free: the timeout starts when the request does."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_in_flight)
        async with self._slots:
            return await self._given_fetch(url, timeout)

    def start(self) -> None:
        """Start one checking task per member (needs a running event loop); with more
        members than requests in flight, the first checks are spread over one period."""
        hosts = self._config.hosts
        spread = len(hosts) > self._max_in_flight
        for index, host in enumerate(hosts):
            # the primes at once: the others are compared with their versions
            offset = (self._config.check.period * index / len(hosts)
                      if spread and not host.prime else 0.0)
            self._spawn(host.name, offset)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def update_config(self, config: RedirectorConfig) -> None:
        """Adopt a reloaded config: keep the status of members whose endpoints did not change."""
        old, self._config = self._config, config
        running = bool(self._tasks)
        for name in [n for n in self._status if config.host(n) is None]:
            del self._status[name]
            task = self._tasks.pop(name, None)
            if task is not None:
                task.cancel()
        if {h.name for h in old.primes} != {h.name for h in config.primes}:
            self._prime_versions = None
        # a rollout's accepted set changed: members it now judges otherwise are checked again
        # at once (not after failed_period)
        recheck = old.accepted_versions != config.accepted_versions
        for host in config.hosts:
            previous = old.host(host.name)
            if previous is not None and _identity(previous) == _identity(host):
                if recheck and self._status.get(host.name, MemberStatus()).reason \
                        == REASON_VERSIONS:
                    self._restart_check(host.name, running)
                continue
            self._status[host.name] = MemberStatus()
            self._versions.pop(host.name, None)
            task = self._tasks.pop(host.name, None)
            if task is not None:
                task.cancel()
            if running:
                self._spawn(host.name)
        self._choose_reference()
        self._changed()

    def _restart_check(self, name: str, running: bool) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
        if running:
            self._spawn(name)

    async def check_now(self, name: str) -> CheckResult:
        """Check one member once and record the result."""
        host = self._config.host(name)
        if host is None:
            raise KeyError(name)
        result = await check_member(
            host,
            check=self._config.check,
            pod_headroom=self._config.pod_headroom,
            reference_versions=None if self._is_reference(host) else self._prime_versions,
            fetch=self._fetch,
            accepted_versions=None if self._is_reference(host) else self._config.accepted_versions,
            clock=self._clock,
            retry_delay=self._retry_delay,
        )
        self._record(host, result)
        return result

    def _spawn(self, name: str, offset: float = 0.0) -> None:
        self._tasks[name] = asyncio.get_running_loop().create_task(
            self._watch(name, offset), name=f"health-check-{name}"
        )

    async def _watch(self, name: str, offset: float = 0.0) -> None:
        if offset > 0:
            await self._clock.sleep(offset)
        host = self._config.host(name)
        if host is not None and not host.prime and not self._primes_done.is_set():
            await self._wait_for_primes()
        while True:
            try:
                result = await self.check_now(name)
            except KeyError:
                return  # removed by a reload
            except Exception:
                log.exception("health check of %s crashed", name)
                result = CheckResult(False, REASON_HEALTH, "check crashed")
            delay = next_check_delay(result.healthy, self._config.check, self._rng.random())
            if result.reason == REASON_VERSIONS and name == self.reference.name:
                delay = 0.0  # it just became the reference: checked again without one
            await self._clock.sleep(delay)

    async def _wait_for_primes(self) -> None:
        # Bounded: an unreachable prime must not hold the others back for all its retries.
        waiter = asyncio.ensure_future(self._primes_done.wait())
        timer = asyncio.ensure_future(self._clock.sleep(self._config.check.timeout))
        try:
            await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            timer.cancel()

    def _record(self, host: HostConfig, result: CheckResult) -> None:
        current = self._config.host(host.name)
        if current is None or _identity(current) != _identity(host):
            return  # removed or re-pointed by a reload while we were checking it
        if result.versions is not None:
            self._versions[host.name] = result.versions
        before = self._status.get(host.name, MemberStatus())
        self._status[host.name] = MemberStatus(
            healthy=result.healthy,
            checked=True,
            reason=result.reason,
            message=result.message,
            checks=result.checks,
            health_ok=result.health_ok,
        )
        reference_moved = self._choose_reference()
        self.check_counts[(host.name, result.healthy)] += 1
        if result.healthy and not before.healthy:
            log.warning("%s has been added to the rotation", host.name)
        elif not result.healthy:
            level = logging.WARNING if before.healthy or not before.checked else logging.INFO
            log.log(level, "%s is unhealthy (%s): %s", host.name, result.reason, result.message)
        if all(self._status.get(p.name, MemberStatus()).checked for p in self._config.primes):
            self._primes_done.set()
        if result.healthy != before.healthy or reference_moved:
            self._changed()

    # the reference (reference.py) ----------------------------------------------------------

    @property
    def reference(self) -> Reference:
        current = self.references.current
        assert current is not None  # chosen in __init__ and after every change
        return current

    def _is_reference(self, host: HostConfig) -> bool:
        """Checked without a versions reference: the acting reference, or the configured
        prime (whose versions become the reference again once it recovers)."""
        return host.prime or host.name == self.reference.name

    def _choose_reference(self) -> bool:
        """Choose the acting reference from the statuses now; its versions become the ones
        every other member must run. True when another member acts now: the members failing
        on versions are checked again at once, against the new reference."""
        before = self.references.current
        ranks = {name: HEALTHY if s.healthy else VERSIONS_ONLY
                 if s.health_ok and s.reason == REASON_VERSIONS else UNFIT
                 for name, s in self._status.items()}
        checked = {name: s.checked for name, s in self._status.items()}
        now = self.references.choose(self._config, ranks, checked, self._clock.time())
        versions = self._versions.get(now.name)
        if versions is not None:
            if versions != self._prime_versions:
                log.info("reference %s versions are now %s", now.name, versions)
            self._prime_versions = versions
        moved = before is not None and before.name != now.name
        if moved:
            log.warning("versions reference and last resort: %s (%s)", now.name, now.reason)
            self._recheck_versions_failures()
        return moved

    def _recheck_versions_failures(self) -> None:
        if not self._tasks:
            return
        current = asyncio.current_task()
        for name, status in self._status.items():
            task = self._tasks.get(name)
            if status.reason != REASON_VERSIONS or task is None or task is current:
                continue
            self._restart_check(name, running=True)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
