"""Durations as people write them (30m, 90s, 1h30m): parsed to seconds and formatted back."""

from __future__ import annotations

import re

from .errors import UsageError

_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)


def parse_duration(text: str) -> float:
    """Seconds in a duration like 30m, 90s, 1h30m, 0.5s (units h, m, s in that order)."""
    value = text.strip()
    match = _DURATION.match(value)
    if not value or match is None or not any(match.groupdict().values()):
        raise UsageError(
            f"invalid duration {text!r}: expected a number with a unit, like 30m, 90s, 1h30m "
            "or 0.5s"
        )
    parts = match.groupdict()
    return (
        float(parts["h"] or 0) * 3600 + float(parts["m"] or 0) * 60 + float(parts["s"] or 0)
    )


def format_duration(seconds: float) -> str:
    """The inverse of parse_duration, for messages: 5400 -> 1h30m, 0.5 -> 0.5s, 0 -> 0s."""
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
