"""Durations: one syntax for every time option (Go's, as helm takes it, plus plain seconds),
parsed to seconds, formatted back, and handed to helm as a Go duration."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from federation_deploy.cli.params import DURATION, POSITIVE_DURATION
from federation_deploy.durations import (
    MAX_DURATION,
    Duration,
    DurationTooLong,
    format_duration,
    go_duration,
    parse_duration,
)
from federation_deploy.errors import UsageError


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800), ("90s", 90), ("1h30m", 5400), ("0.5s", 0.5), ("2h", 7200), ("0s", 0),
    ("1m30s", 90), (" 45s ", 45), ("1.5h", 5400),
    # helm's (Go's) syntax beyond ours of the first wave
    ("1.5m", 90), ("500ms", 0.5), ("1h0m0s", 3600), ("250us", 0.00025), ("250µs", 0.00025),
    ("1000000ns", 0.001), (".5s", 0.5), ("1.s", 1), ("1s1h", 3601), ("1m1m", 120),
    # plain seconds, as verify --delay took them
    ("30", 30), ("0", 0), ("2.5", 2.5),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "m", "30x", "5 m", "-5s", "1h-", "1d", "ms", "1.2.3s",
                                  "s30", "30 s", "1h 30m", "+5s", "1e3s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration") as info:
        parse_duration(text)
    assert "1.5m" in str(info.value) and "500ms" in str(info.value)


@pytest.mark.parametrize("text", ["99999999999h", "720h1s", "2592001", "721h",
                                  "9" * 400, "1" + "0" * 30 + "h"])
def test_parse_duration_refuses_beyond_the_bound(text: str) -> None:
    # issue 29: `--hold 99999999999h` passed and overflowed after step 1 was published
    with pytest.raises(DurationTooLong, match=r"at most 30 days \(720h\)"):
        parse_duration(text)


def test_the_bound_itself_is_a_duration() -> None:
    assert parse_duration("720h") == MAX_DURATION == 30 * 86400


@pytest.mark.parametrize("value", ["99999999999h", "2592001", 1e12])
def test_a_time_option_beyond_the_bound_says_the_bound(value: object) -> None:
    @click.command()
    @click.option("--hold", type=DURATION)
    def command(hold: Duration) -> None:
        click.echo(hold.seconds)

    result = CliRunner().invoke(command, ["--hold", str(value)] if isinstance(value, str)
                                else [], default_map={"hold": value})
    assert result.exit_code == 2, result.output
    assert "at most 30 days (720h)" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("seconds", [0, 0.5, 59, 60, 90, 1800, 5400, 7322.5])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(("seconds", "go"), [
    (0, "0s"), (90, "1m30s"), (600, "10m"), (5400, "1h30m"), (0.5, "500ms"),
    (1.25, "1s250ms"), (3601.001, "1h1s1ms"), (0.000001, "1us"),
])
def test_go_duration(seconds: float, go: str) -> None:
    assert go_duration(seconds) == go
    assert parse_duration(go) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1.5m", "500ms", "1h30m", "90", "2.5h", "0.1s"])
def test_go_duration_of_a_parse_means_the_same_time(text: str) -> None:
    duration = Duration.parse(text)
    assert parse_duration(duration.go) == pytest.approx(duration.seconds)
    assert parse_duration(duration.text) == pytest.approx(duration.seconds)


def _probe(param_type: click.ParamType) -> click.Command:
    @click.command()
    @click.option("--wait", type=param_type, default="10s")
    def probe(wait: Duration) -> None:
        click.echo(f"{wait.seconds!r} {wait.go} {wait.text}")

    return probe


@pytest.mark.parametrize(("given", "shown"), [
    (["--wait", "1.5m"], "90.0 1m30s 1m30s"),
    (["--wait", "500ms"], "0.5 500ms 0.5s"),
    (["--wait", "45"], "45.0 45s 45s"),
    ([], "10.0 10s 10s"),
])
def test_click_type_converts(given: list[str], shown: str) -> None:
    result = CliRunner().invoke(_probe(DURATION), given)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == shown


def test_click_type_refuses_with_usage_error() -> None:
    result = CliRunner().invoke(_probe(DURATION), ["--wait", "ten minutes"])
    assert result.exit_code == 2
    assert "Invalid value for '--wait'" in result.output
    assert "'ten minutes' is not a duration like" in result.output


def test_positive_type_refuses_zero() -> None:
    assert CliRunner().invoke(_probe(DURATION), ["--wait", "0"]).exit_code == 0
    result = CliRunner().invoke(_probe(POSITIVE_DURATION), ["--wait", "0s"])
    assert result.exit_code == 2
    assert "must be longer than 0" in result.output
