"""The ramp's state in federation.yaml: round-trip writes keep everything else."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from federation_deploy.config import Federation, RampState
from federation_deploy.errors import ConfigError, UsageError
from federation_deploy.traffic.ramp.state import parse_timestamp, utc_timestamp, write_member
from federation_deploy.traffic.weights import snapshot_of
from tests.helpers.standin_federation import StandinFederation

STATE = RampState(steps=(1.0, 5.0, 25.0, 100.0), step=1, to_weight=100.0, hold="30m",
                  started="2025-03-01T10:00:00Z", last_healthy=None)


def write_member_state(
    fed: Federation, member: str, weight: float, ramp: RampState | None
) -> Federation:
    """write_member on the file fed was just loaded from; the reloaded federation."""
    return write_member(snapshot_of(fed), member, weight, ramp).fed


def _diff(before: str, after: str) -> tuple[list[str], list[str]]:
    lines = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return ([line[2:] for line in lines if line.startswith("- ")],
            [line[2:] for line in lines if line.startswith("+ ")])


def test_step_changes_only_weight_and_ramp_block(federation: StandinFederation) -> None:
    before = federation.path.read_text()
    fed = write_member_state(federation.load(), "gamma", 5.26316, STATE)
    after = federation.path.read_text()
    removed, added = _diff(before, after)
    assert removed == ["    weight: 0                  # zero until ramped"]
    assert added == [
        "generation: 1",  # a weight change: one more than the (absent, so 0) generation
        "    weight: 5.26316            # zero until ramped",
        "    ramp:",
        "      steps: [1, 5, 25, 100]",
        "      step: 1",
        "      to_weight: 100",
        "      hold: 30m",
        "      started: '2025-03-01T10:00:00Z'",
        "      last_healthy:",
    ]
    # the ramp block sits after target_weight, and the comments and quoting around survive
    assert '    url: "http://127.0.0.1' in after
    assert "    target_weight: 100         # 50% of launches once the ramp is complete\n" \
           "    ramp:\n" in after
    assert fed.members["gamma"].ramp == STATE
    assert fed.members["gamma"].weight == 5.26316


def test_update_in_place_then_remove_restores_the_original(
    federation: StandinFederation,
) -> None:
    original = federation.path.read_text()
    fed = write_member_state(federation.load(), "gamma", 1.0101,
                             RampState(STATE.steps, 0, 100.0, "30m", STATE.started, None))
    fed = write_member_state(fed, "gamma", 5.26316,
                             RampState(STATE.steps, 1, 100.0, "30m", "2025-03-01T10:30:00Z",
                                       "2025-03-01T10:29:58Z"))
    text = federation.path.read_text()
    assert "      step: 1\n" in text
    assert "      last_healthy: '2025-03-01T10:29:58Z'\n" in text
    write_member_state(fed, "gamma", 0, None)
    # everything as it was, but the generation: three weight changes
    assert federation.path.read_text() == original.replace(
        "\nmembers:\n", "\ngeneration: 3\nmembers:\n")


def test_comment_inside_the_ramp_block_survives_an_update(
    federation: StandinFederation,
) -> None:
    fed = write_member_state(federation.load(), "gamma", 1.0101,
                             RampState(STATE.steps, 0, 100.0, "30m", STATE.started, None))
    path = federation.path
    path.write_text(path.read_text().replace("      hold: 30m\n",
                                             "      hold: 30m                # agreed in #42\n"))
    write_member_state(fed, "gamma", 5.26316, STATE)
    assert "      hold: 30m                # agreed in #42\n" in path.read_text()


def test_invalid_result_restores_the_previous_text(federation: StandinFederation) -> None:
    before = federation.path.read_text()
    fed = federation.load()
    bad = RampState(steps=(1.0, 5.0), step=5, to_weight=100.0, hold="30m")  # step past the end
    with pytest.raises(ConfigError, match="past the last"):
        write_member_state(fed, "gamma", 1.0, bad)
    assert federation.path.read_text() == before


def test_unknown_member_is_an_error(federation: StandinFederation) -> None:
    with pytest.raises(ConfigError, match="members.nope"):
        write_member_state(federation.load(), "nope", 1.0, None)


def test_write_is_atomic_no_temp_files_left(federation: StandinFederation) -> None:
    write_member_state(federation.load(), "gamma", 1.0101, STATE)
    # the sidecar lock file of the compare-and-swap stays (a lock on a file that is replaced
    # by a rename would lock nothing)
    assert sorted(p.name for p in federation.config_dir.iterdir()) == [
        ".federation.yaml.lock", "federation.yaml"]


def test_timestamps() -> None:
    moment = datetime(2025, 3, 1, 11, 0, 5, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert utc_timestamp(moment) == "2025-03-01T10:00:05Z"
    assert parse_timestamp("2025-03-01T10:00:05Z") == moment.replace(microsecond=0)
    assert parse_timestamp("2025-03-01T10:00:05").tzinfo == UTC
    with pytest.raises(UsageError):
        parse_timestamp("yesterday")


@pytest.mark.parametrize("weight", [0.0001, 0.00012345, 0.1 + 0.2, 123456.000001])
def test_a_small_weight_written_reads_back(federation: StandinFederation, weight: float) -> None:
    """Issue 29: `--weight 0.00001` wrote 1e-05, which the tool then read as a string."""
    fed = write_member_state(federation.load(), "gamma", weight, None)
    assert fed.members["gamma"].weight == weight
    assert "e-" not in federation.path.read_text().split("gamma:", 1)[1].split("\n\n")[0]


@pytest.mark.parametrize("weight", [0.00001, 1e-7, 1e-300])
def test_a_weight_below_the_smallest_is_refused_unwritten(federation: StandinFederation,
                                                         weight: float) -> None:
    """Issue 29 re-trial: 1e-300 was written as 300 digits; a non-zero weight is at least
    0.0001 (the redirector's MIN_WEIGHT), and a refused write leaves the file as it was."""
    before = federation.path.read_text()
    with pytest.raises(ConfigError, match="at least 0.0001"):
        write_member_state(federation.load(), "gamma", weight, None)
    assert federation.path.read_text() == before
