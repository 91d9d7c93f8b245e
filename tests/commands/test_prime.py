"""`traffic prime MEMBER` through the real CLI: federation.yaml written by the one writer,
the redirector config published to a file, and a real `redirector serve` process serving the
new prime; refusals change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands import freeze as freezing
from federation_deploy.config import load_federation
from federation_deploy.traffic.publish import publish_file
from federation_deploy.traffic.weights import WRITER_LOCK, writer_lock
from tests.helpers.recording import RecordingRunner
from tests.helpers.standin_federation import StandinFederation
from tests.traffic.test_one_writer import RedirectorProcess, start_redirector, stop, wait_for


@pytest.fixture
def routed_gamma(federation: StandinFederation, tmp_path: Path
                 ) -> Iterator[tuple[Path, RedirectorProcess]]:
    """The stand-in federation with gamma in rotation (weight 20), published and served."""
    path = federation.path
    path.write_text(path.read_text().replace("weight: 0                  # zero until ramped",
                                             "weight: 20"))
    published = tmp_path / "redirector" / "config.json"
    published.parent.mkdir()
    publish_file(federation.load(), published)
    running = start_redirector(published, tmp_path / "redirector.log")
    try:
        wait_for(lambda: set(running.state()[0]) == {"alpha", "beta", "gamma"}, "all in rotation")
        yield published, running
    finally:
        stop(running.proc)


def prime(federation: StandinFederation, published: Path, running: RedirectorProcess,
          member: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [
        "--config-dir", str(federation.config_dir), "traffic", "prime", member, "--yes",
        "--publish", f"file:{published}", "--redirector-url", running.url,
        "--settle-timeout", "30s"])
    return result.exit_code, result.stdout, result.stderr


def test_prime_moves_through_the_one_writer_and_is_served(
        federation: StandinFederation, routed_gamma: tuple[Path, RedirectorProcess]) -> None:
    published, running = routed_gamma
    before = federation.path.read_text()
    code, out, err = prime(federation, published, running, "gamma")
    assert code == 0, err
    assert out == ("gamma is the prime (was alpha): the redirector compares every member's "
                   "versions with gamma's and sends every launch there when no member is "
                   "healthy\n")
    fed = load_federation(federation.config_dir)
    assert [m.name for m in fed.members.values() if m.prime] == ["gamma"]
    assert fed.generation == 1
    text = federation.path.read_text()
    assert "    prime: true\n    weight: 60                 # the prime's weight" not in text
    assert "    cloud: kubeconfig\n    prime: true\n    weight: 20" in text
    assert text.count("# ") == before.count("# ")  # comments kept
    config = json.loads(published.read_text())
    assert config["generation"] == 1
    assert [n for n, h in config["hosts"].items() if h.get("prime")] == ["gamma"]
    # both re-checked after the reload (a prime flag that changes resets a member's health)
    served, generation = wait_for(lambda: (state := running.state())[0].keys() >= {
        "alpha", "gamma"} and state, "alpha and gamma back in rotation")
    assert generation == 1 and served["gamma"]["prime"] is True
    assert served["alpha"]["prime"] is False
    wait_for(lambda: requests.get(running.url + "/health", timeout=5).json()["reference"][
        "member"] == "gamma", "gamma as the redirector's reference")

    # again: nothing to do
    code, out, err = prime(federation, published, running, "gamma")
    assert code == 0, err
    assert out == ("gamma is already the prime, and the redirector serves it: nothing to "
                   "do\n")
    assert load_federation(federation.config_dir).generation == 1


@pytest.mark.parametrize("member, why", [
    ("beta", "beta cannot be the prime: beta is external (run by a partner)"),
    ("nope", "unknown member 'nope'"),
])
def test_refused_members_change_nothing(
        federation: StandinFederation, routed_gamma: tuple[Path, RedirectorProcess],
        member: str, why: str) -> None:
    published, running = routed_gamma
    before, config = federation.path.read_text(), published.read_text()
    code, _, err = prime(federation, published, running, member)
    assert code == 2 and why in err, err
    assert federation.path.read_text() == before and published.read_text() == config


def test_a_member_out_of_rotation_is_refused(federation: StandinFederation, tmp_path: Path
                                             ) -> None:
    published = tmp_path / "config.json"
    publish_file(federation.load(), published)
    before = federation.path.read_text()
    result = CliRunner().invoke(cli, ["--config-dir", str(federation.config_dir), "traffic",
                                      "prime", "gamma", "--yes", "--publish",
                                      f"file:{published}"])
    assert result.exit_code == 2
    assert "gamma is at weight 0 (out of rotation)" in result.stderr
    assert federation.path.read_text() == before


def test_a_running_writer_refuses_it(federation: StandinFederation,
                                     routed_gamma: tuple[Path, RedirectorProcess]) -> None:
    published, running = routed_gamma
    with writer_lock(federation.config_dir, "ramp gamma", "gamma"):
        code, _, err = prime(federation, published, running, "gamma")
    assert code == 1, err
    assert "another weight writer runs on this machine" in err
    assert (federation.config_dir / WRITER_LOCK).exists()
    assert load_federation(federation.config_dir).members["alpha"].prime


def test_a_freeze_refuses_it_like_traffic_set(federation: StandinFederation,
                                              tmp_path: Path) -> None:
    freezing.freeze(federation.load(), "conference demo", "2d", "ada", runner=RecordingRunner())
    published = tmp_path / "config.json"
    publish_file(federation.load(), published)
    before = federation.path.read_text()
    result = CliRunner().invoke(cli, ["--config-dir", str(federation.config_dir), "traffic",
                                      "prime", "gamma", "--yes", "--publish",
                                      f"file:{published}"])
    assert result.exit_code == 2
    assert "refused: traffic prime gamma: the federation is frozen until" in result.stderr
    assert federation.path.read_text() == before
