"""Synthetic launches on a member's own BinderHub API: probes during a ramp's holds, and warming.

A probe launches a small known repository on the new member directly (its /build API, not
through the redirector), at most one every `interval` seconds of the ramp's clock, and the
ramp counts it as evidence apart from users' launches (BinderHub counts it in its own
metrics too: the ramp subtracts the probes it sent from the member's launches). Warming
builds the repositories the member is about to serve, before its first step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import requests

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
    try:
        with requests.get(url, stream=True, timeout=min(timeout, 60.0),
                          headers={"Accept": "text/event-stream", "Connection": "close"}
                          ) as response:
            if response.status_code != 200:
                return LaunchResult(False, time.monotonic() - start,
                                    f"{url}: HTTP {response.status_code}")
            for line in response.iter_lines(decode_unicode=True):
                if time.monotonic() - start > timeout:
                    return LaunchResult(False, time.monotonic() - start,
                                        f"{url}: not ready after {timeout:.0f}s")
                if not line or not line.startswith("data:"):
                    continue
                try:
                    event = json.loads(line[5:])
                except ValueError:
                    continue
                phase = event.get("phase") if isinstance(event, dict) else None
                if phase == "ready":
                    return LaunchResult(True, time.monotonic() - start, "ready")
                if phase == "failed":
                    message = str(event.get("message", "")).strip()[:200]
                    return LaunchResult(False, time.monotonic() - start,
                                        f"failed: {message or 'no message'}")
    except requests.RequestException as exc:
        return LaunchResult(False, time.monotonic() - start, f"{url}: {type(exc).__name__}")
    return LaunchResult(False, time.monotonic() - start, f"{url}: the stream ended early")


@dataclass
class Probes:
    """A ramp's probes of one member: launched at a bounded rate, remembered for the windows
    the evidence gate asks about (and subtracted from the member's own counts there)."""

    member_url: str
    repo: str
    launcher: Launcher = launch
    interval: float = DEFAULT_PROBE_INTERVAL
    timeout: float = DEFAULT_PROBE_TIMEOUT
    sent: list[tuple[datetime, LaunchResult]] = field(default_factory=list)

    def due(self, now: datetime) -> bool:
        return not self.sent or (now - self.sent[-1][0]).total_seconds() >= self.interval

    def maybe_launch(self, now: datetime) -> LaunchResult | None:
        """One probe when the last one is at least `interval` ago, else None."""
        if not self.due(now):
            return None
        result = self.launcher(build_url(self.member_url, self.repo), self.timeout)
        self.sent.append((now, result))
        return result

    def window(self, since: datetime, until: datetime) -> Launches:
        """The probes launched from since to until, as evidence."""
        chosen = [r for at, r in self.sent if since <= at <= until]
        failed = sum(1 for r in chosen if not r.ok)
        return Launches(float(len(chosen)), float(failed),
                        Histogram.of(r.seconds for r in chosen if r.ok))


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
