"""Durations as people write them (30m, 1h30m, 1.5m, 500ms, 90): one parser for every time
option, formatted back for messages and as a Go duration for helm and kubectl; and the one
Clock that waits them out."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from federation_deploy.errors import UsageError

# Go's time.ParseDuration units (helm and kubectl parse --timeout with it), in seconds.
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6,
          "ns": 1e-9}
# One number-with-unit; Go accepts them in any order and repeated ("1s1h"), and so do we, so
# that whatever helm takes we take too. Longer units first: "ms" must not read as "m" + "s".
_TERM = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|h|m|s)")
_PLAIN = re.compile(r"^(\d+\.?\d*|\.\d+)$")
EXPECTED = "a duration like 30m, 1h30m, 1.5m, 90s, 500ms or plain seconds (90)"
# The longest wait or timeout any option or config key may say. Without a bound, `--hold
# 99999999999h` passed the parser and overflowed the datetime arithmetic after step 1 was
# published (issue 29); nothing the tool waits for is meant to take longer than a month.
MAX_DURATION = 30 * 86400.0
MAX_DURATION_TEXT = "30 days (720h)"


class DurationTooLong(UsageError):
    """A duration beyond MAX_DURATION; `problem` says the bound."""

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(f"invalid duration {text!r}: {problem}")
        self.problem = problem


def duration_bound_problem(seconds: float) -> str | None:
    """Why seconds cannot be a duration (not finite, or beyond MAX_DURATION), or None."""
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        return f"at most {MAX_DURATION_TEXT}"
    return None


def parse_duration(text: str) -> float:
    """Seconds in a duration: Go's syntax (h, m, s, ms, us, ns; fractions; terms in any
    order), or a plain number of seconds. Negative durations are refused: every time option
    is a wait or a timeout; so are those beyond MAX_DURATION."""
    total = _parse_unbounded(text)
    if problem := duration_bound_problem(total):
        raise DurationTooLong(text, problem)
    return total


def _parse_unbounded(text: str) -> float:
    value = text.strip()
    if _PLAIN.match(value):
        return float(value)
    total = 0.0
    position = 0
    for match in _TERM.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not value or position != len(value):
        raise UsageError(f"invalid duration {text!r}: expected {EXPECTED}")
    return total


def format_duration(seconds: float) -> str:
    """For messages: 5400 -> 1h30m, 0.5 -> 0.5s, 0 -> 0s (parse_duration reads it back)."""
    if seconds < 0:
        raise ValueError(f"negative duration {seconds}")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{int(hours)}h"
    if minutes:
        out += f"{int(minutes)}m"
    if secs or not out:
        out += f"{round(secs, 3):g}s"
    return out


def go_duration(seconds: float) -> str:
    """The same time as a Go duration with integer terms, for helm/kubectl --timeout:
    90 -> 1m30s, 0.5 -> 500ms, 5400 -> 1h30m, 0 -> 0s. Exact to the nanosecond."""
    if seconds < 0:
        raise ValueError(f"negative duration {seconds}")
    rest = round(seconds * 1e9)
    out = ""
    for unit, size in (("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9),
                       ("ms", 10**6), ("us", 10**3), ("ns", 1)):
        count, rest = divmod(rest, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"


@dataclass(frozen=True)
class Duration:
    """A parsed duration option: its seconds, and the same normalised for people and Go."""

    seconds: float

    @classmethod
    def parse(cls, text: str) -> Duration:
        return cls(parse_duration(text))

    @property
    def text(self) -> str:
        return format_duration(self.seconds)

    @property
    def go(self) -> str:
        return go_duration(self.seconds)

    def __str__(self) -> str:
        return self.text


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Clock:
    """Time for long waits (a ramp's holds, a drain's watch); tests pass a fake whose sleep only
    moves `now` forward. The redirector keeps its own async clock
    (redirector/health_checks.py): it imports nothing else of the package."""

    now: Callable[[], datetime] = _utc_now
    sleep: Callable[[float], None] = time.sleep
