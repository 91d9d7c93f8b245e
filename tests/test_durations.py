"""Durations as people write them: parsed to seconds and formatted back."""

from __future__ import annotations

import pytest

from federation_deploy.durations import format_duration, parse_duration
from federation_deploy.errors import UsageError


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800), ("90s", 90), ("1h30m", 5400), ("0.5s", 0.5), ("2h", 7200), ("0s", 0),
    ("1m30s", 90), (" 45s ", 45), ("1.5h", 5400),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "m", "30x", "5 m", "1s1h", "-5s", "500ms", "1h-"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [0, 0.5, 59, 60, 90, 1800, 5400, 7322.5])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
