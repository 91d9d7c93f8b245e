"""Synthetic launches on a member's own BinderHub API: probes during a ramp's holds, the
pre-flight before its first step, and warming.

A probe launches a small known repository on the new member directly (its /build API, not
through the redirector), in the background (one in flight at most, one started every
`interval` seconds of the ramp's clock at most: a check never waits on a probe), and the
ramp counts it as evidence apart from users' launches (BinderHub counts it in its own
metrics too: the ramp subtracts the probes it sent from the member's launches). The
pre-flight (PreflightLaunches) launches the repositories the member is about to serve (the
most launched of its pool), a few at a time, before any user is sent to it: its first pass
over them warms them, every launch is evidence. Warming alone (`warm`) builds them once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import requests

from federation_deploy.durations import format_duration
from federation_deploy.health import http
from federation_deploy.traffic.ramp.evidence import Histogram, Launches

DEFAULT_PROBE_INTERVAL = 60.0
DEFAULT_PROBE_TIMEOUT = 600.0


@dataclass(frozen=True)
class LaunchResult:
    """One launch through BinderHub's API: ready or not, how long it took, what it said."""

    ok: bool
    seconds: float
    detail: str


# (build URL, timeout) -> the launch's result; never raises
Launcher = Callable[[str, float], LaunchResult]


def build_url(member_url: str, repo: str) -> str:
    """BinderHub's build API for repo, given as `gh/org/name/ref` (its launch path)."""
    return f"{member_url.rstrip('/')}/build/{repo.strip('/')}"


def launch(url: str, timeout: float = DEFAULT_PROBE_TIMEOUT) -> LaunchResult:
    """Launch through BinderHub's build API (an event stream of `data: {"phase": ...}`
    lines) until it says ready or failed, or timeout seconds pass."""
    start = time.monotonic()
    events = _EventStream()
    try:
        # one total deadline (health.http): a stream that trickles bytes but never an event
        # ends at `timeout` like one that says nothing
        answer = http.get(url, timeout, on_chunk=events.feed,
                          headers={"Accept": "text/event-stream", "Connection": "close"})
    except http.DeadlineExceeded:
        return LaunchResult(False, time.monotonic() - start,
                            f"{url}: not ready after {timeout:g}s")
    except requests.RequestException as exc:
        return LaunchResult(False, time.monotonic() - start, f"{url}: {type(exc).__name__}")
    seconds = time.monotonic() - start
    if answer.status != 200:
        return LaunchResult(False, seconds, f"{url}: HTTP {answer.status}")
    if events.phase == "ready":
        return LaunchResult(True, seconds, "ready")
    if events.phase == "failed":
        return LaunchResult(False, seconds, f"failed: {events.message or 'no message'}")
    return LaunchResult(False, seconds, f"{url}: the stream ended early")


class _EventStream:
    """BinderHub's build events (`data: {"phase": ...}` lines) as they arrive: feed() says
    True once the launch is over (ready or failed)."""

    def __init__(self) -> None:
        self._pending = b""
        self.phase: str | None = None
        self.message = ""

    def feed(self, chunk: bytes) -> bool:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line.startswith("data:"):
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                continue
            phase = event.get("phase") if isinstance(event, dict) else None
            if phase in ("ready", "failed"):
                self.phase = phase
                self.message = str(event.get("message", "")).strip()[:200]
                return True
        return False


class ProbeSource(Protocol):
    """What the evidence gate launches during a hold: step probes (Probes) or the pre-flight's
    pool launches (PreflightLaunches)."""

    def due_in(self, now: datetime) -> float | None: ...

    def maybe_launch(self, now: datetime) -> bool: ...

    def gather(self, now: datetime, wait: float | None = None) -> int: ...

    def settle(self, now: datetime) -> str | None: ...

    def window(self, since: datetime, until: datetime) -> Launches: ...

    def rate(self) -> str: ...


# Runs a probe's launch in the background and returns at once (default: a daemon thread);
# the benchmark and some tests run it inline. The launch stores its own result.
Spawn = Callable[[Callable[[], None]], None]


def in_thread(work: Callable[[], None]) -> None:
    """A probe's launch in a daemon thread: a ramp that exits does not wait for it."""
    threading.Thread(target=work, name="ramp-probe", daemon=True).start()


@dataclass
class InFlight:
    """The probe being launched: when (the ramp's clock), and its result once it ended."""

    started: datetime
    result: LaunchResult | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Probes:
    """A ramp's probes of one member, launched in the background (at most one in flight, at
    most one started every `interval` seconds of the ramp's clock) so that a check never
    waits on one; a probe is collected at the first check after it ended (and its own launch
    time has passed on the ramp's clock), and counted at that moment: BinderHub counts it in
    its metrics when it ends too. The evidence gate subtracts them from the member's counts.
    A probe that takes longer than `interval` delays the next (rate() says what happens)."""

    member_url: str
    repo: str
    launcher: Launcher = launch
    interval: float = DEFAULT_PROBE_INTERVAL
    timeout: float = DEFAULT_PROBE_TIMEOUT
    spawn: Spawn = in_thread
    sent: list[tuple[datetime, LaunchResult]] = field(default_factory=list)
    flying: InFlight | None = None
    last_start: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self.flying is None and (
            self.last_start is None
            or (now - self.last_start).total_seconds() >= self.interval)

    def due_in(self, now: datetime) -> float | None:
        """Seconds until the next probe may start (the ramp wakes then, whatever its check
        interval); None: it is due, but the last one is still in flight."""
        if self.last_start is None:
            return 0.0
        left = self.interval - (now - self.last_start).total_seconds()
        if left > 0:
            return left
        return None if self.flying is not None else 0.0

    def maybe_launch(self, now: datetime) -> bool:
        """Start one probe in the background when none is in flight and the last one started
        at least `interval` ago; returns whether it did. Never waits for it."""
        if not self.due(now):
            return False
        flight = InFlight(now)
        url = build_url(self.member_url, self.repo)

        def work() -> None:
            try:
                flight.result = self.launcher(url, self.timeout)
            except Exception as exc:  # a launcher never raises; a bug must not hang the ramp
                flight.result = LaunchResult(False, 0.0, f"{type(exc).__name__}: {exc}")
            flight.done.set()

        self.flying, self.last_start = flight, now
        self.spawn(work)
        return True

    def collect(self, now: datetime, wait: float | None = None) -> LaunchResult | None:
        """The probe in flight, once it ended (wait: up to that many real seconds for it, for
        `ramp --advance`, which has no next check); counted at now."""
        flight = self.flying
        if flight is None:
            return None
        if wait is not None:
            flight.done.wait(wait)
        elif (now - flight.started).total_seconds() < (
                flight.result.seconds if flight.result is not None else 0.0):
            return None  # on a simulated clock: not ended yet
        if not flight.done.is_set() or flight.result is None:
            return None
        self.flying = None
        self.sent.append((now, flight.result))
        return flight.result

    def gather(self, now: datetime, wait: float | None = None) -> int:
        """collect(), as the number of probes it counted (the gate's interface)."""
        return int(self.collect(now, wait) is not None)

    def settle(self, now: datetime) -> str | None:
        """The gate decided: why the hold goes on for the probes: never (a step's probe in
        flight is collected at the next check of the next step)."""
        return None

    def window(self, since: datetime, until: datetime) -> Launches:
        """The probes that ended from since to until, as evidence."""
        return _window([r for at, r in self.sent if since <= at <= until])

    def rate(self) -> str:
        """What the probe rate is: one every interval, at most one in flight."""
        return (f"a probe launch of {self.repo} every {format_duration(self.interval)} at most "
                "(one in flight at a time: a longer launch delays the next)")


def _window(chosen: Sequence[LaunchResult]) -> Launches:
    failed = sum(1 for r in chosen if not r.ok)
    return Launches(float(len(chosen)), float(failed),
                    Histogram.of(r.seconds for r in chosen if r.ok))


# a first launch may build the repository on the member: a pre-flight launch gets this long
DEFAULT_PREFLIGHT_TIMEOUT = 1800.0
DEFAULT_PREFLIGHT_CONCURRENCY = 4
# a repository that failed this many pre-flight launches is launched no more: one broken
# everywhere must not fail a member again and again (each failure still counts once)
PREFLIGHT_FAILURES_PER_REPO = 2


@dataclass
class PreflightLaunches:
    """The pre-flight's launches: the member's pool repositories (most launched first) on its
    own BinderHub API, in turn, at most `concurrency` in flight, each started as soon as a
    slot is free; a launch is collected at the first check after it ended (on the ramp's
    clock: after its own launch time), and counted then, as probes are. The first pass over
    the repositories warms them (said as it goes); the gate judges every launch. Once the
    gate has decided, no more are started, and the pre-flight ends when those in flight
    have ended (`settle`): a launch ending later would be counted as a user's at step 1.
    """

    member_url: str
    repos: tuple[str, ...]
    launcher: Launcher = launch
    concurrency: int = DEFAULT_PREFLIGHT_CONCURRENCY
    timeout: float = DEFAULT_PREFLIGHT_TIMEOUT
    spawn: Spawn = in_thread
    progress: Callable[[str], None] | None = None
    sent: list[tuple[datetime, LaunchResult]] = field(default_factory=list)
    flying: list[tuple[str, InFlight]] = field(default_factory=list)
    started: int = 0  # launches started so far (the next repository: started % len(repos))
    failed: dict[str, int] = field(default_factory=dict)
    warmed: set[str] = field(default_factory=set)  # repositories launched once (ended)
    stopped: bool = False  # the gate decided: start no more
    warming: bool = False  # --warm asked: the first pass is said as warming, else pre-flight

    def launchable(self) -> list[str]:
        return [r for r in self.repos
                if self.failed.get(r, 0) < PREFLIGHT_FAILURES_PER_REPO]

    def due_in(self, now: datetime) -> float | None:
        """0 when a launch may start now; None: every slot is taken (or none is left)."""
        free = len(self.flying) < self.concurrency and not self.stopped
        return 0.0 if free and self.launchable() else None

    def maybe_launch(self, now: datetime) -> bool:
        """Fill the free slots with the next repositories in turn; whether any started."""
        launched = False
        while self.due_in(now) == 0.0:
            choices = self.launchable()
            repo = choices[self.started % len(choices)]
            flight = InFlight(now)
            url = build_url(self.member_url, repo)

            def work(flight: InFlight = flight, url: str = url) -> None:
                try:
                    flight.result = self.launcher(url, self.timeout)
                except Exception as exc:  # a launcher never raises; a bug must not hang it
                    flight.result = LaunchResult(False, 0.0, f"{type(exc).__name__}: {exc}")
                flight.done.set()

            self.flying.append((repo, flight))
            self.started += 1
            launched = True
            self.spawn(work)
        return launched

    def gather(self, now: datetime, wait: float | None = None) -> int:
        """Count the launches that ended (on the ramp's clock too); how many. wait: up to
        that many real seconds for each (never used by a running ramp)."""
        counted = 0
        for repo, flight in list(self.flying):
            if wait is not None:
                flight.done.wait(wait)
            result = flight.result
            if not flight.done.is_set() or result is None or (
                    (now - flight.started).total_seconds() < result.seconds):
                continue
            self.flying.remove((repo, flight))
            self.sent.append((now, result))
            counted += 1
            if not result.ok:
                self.failed[repo] = self.failed.get(repo, 0) + 1
            first = repo not in self.warmed  # its first launch: the warming
            self.warmed.add(repo)
            if self.progress is not None and (first or not result.ok):
                what = "ready" if result.ok else "FAILED: " + result.detail
                label = "warming" if self.warming else "pre-flight"
                which = (f"{label} {len(self.warmed)}/{len(self.repos)}: " if first
                         else f"pre-flight launch {len(self.sent)}: ")
                self.progress(f"{which}{repo} {what} ({result.seconds:.0f}s)")
        return counted

    def settle(self, now: datetime) -> str | None:
        """The gate decided: start no more launches; why the pre-flight still holds (some
        are in flight), None once they all ended."""
        self.stopped = True
        if not self.flying:
            return None
        return (f"waiting for {len(self.flying)} pre-flight launch(es) still in flight (they "
                "would count as users' launches at step 1)")

    def window(self, since: datetime, until: datetime) -> Launches:
        """The pre-flight launches that ended from since to until, as evidence."""
        return _window([r for at, r in self.sent if since <= at <= until])

    def rate(self) -> str:
        return (f"a pre-flight of the {len(self.repos)} most launched repositories of its "
                f"pool, {self.concurrency} launches at a time")


@dataclass(frozen=True)
class WarmReport:
    """What warming did: repositories built, failed (with why) and not reached in time."""

    built: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    skipped: tuple[str, ...]

    def summary(self) -> str:
        total = len(self.built) + len(self.failed) + len(self.skipped)
        text = f"warmed {len(self.built)} of {total}"
        if self.failed:
            text += "; failed: " + ", ".join(f"{repo} ({why})" for repo, why in self.failed)
        if self.skipped:
            text += f"; not reached within the timeout: {len(self.skipped)}"
        return text


def warm(member_url: str, repos: Sequence[str], timeout: float,
         progress: Callable[[str], None], launcher: Launcher = launch,
         now: Callable[[], float] = time.monotonic) -> WarmReport:
    """Build repos on the member, one after another, within timeout seconds in all; says
    how it goes after each. Failures are reported, not raised: a cold cache is slower, not
    broken."""
    start = now()
    built: list[str] = []
    failed: list[tuple[str, str]] = []
    for index, repo in enumerate(repos):
        left = timeout - (now() - start)
        if left <= 0:
            return WarmReport(tuple(built), tuple(failed), tuple(repos[index:]))
        result = launcher(build_url(member_url, repo), left)
        if result.ok:
            built.append(repo)
        else:
            failed.append((repo, result.detail))
        progress(f"warming {index + 1}/{len(repos)}: {repo} "
                 f"{'built' if result.ok else 'FAILED: ' + result.detail} "
                 f"({result.seconds:.0f}s)")
    return WarmReport(tuple(built), tuple(failed), ())
