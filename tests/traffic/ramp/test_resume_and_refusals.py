"""What an adversarial maintainer found in the one-writer ramp (issue 13 follow-up), with real
processes: a `redirector serve` process and `federation-deploy` processes on stand-ins.

Resumes that must re-apply a step whose weight moved, refusals that say the next step, a
publish that fails after the write, waits that talk, SIGTERM's exit code, and a rollback that
pauses the ramp. Waits are on conditions (a file's content, a log line), never fixed sleeps.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from federation_deploy.config import load_federation
from federation_deploy.durations import Clock
from federation_deploy.sandbox.member import StandinHandle, start_standin
from federation_deploy.traffic.live import CheckResult
from federation_deploy.traffic.publish import publish_file
from federation_deploy.traffic.ramp.plan import round_weight
from federation_deploy.traffic.ramp.watch import RampIO, RampSettings, RedirectorWatch
from federation_deploy.traffic.shares import share_to_weight
from federation_deploy.traffic.weights import lock_path
from tests.helpers.standin_federation import FEDERATION_YAML, StandinFederation
from tests.traffic.test_one_writer import (
    CLI,
    DELTA,
    Process,
    RedirectorProcess,
    published_state,
    ramp_args,
    start_redirector,
    stop,
    wait_for,
)
from tests.traffic.test_one_writer import redirector_process as one_writer_redirector

pytestmark = pytest.mark.slow  # ramps as CLI processes against a local redirector

# the same fixture as test_one_writer's: a `redirector serve` process on the published config
redirector_process = one_writer_redirector


@pytest.fixture
def four_members(tmp_path: Path) -> Iterator[tuple[Path, Path, RedirectorProcess]]:
    """alpha, beta, and two members to ramp (gamma, delta), published, a redirector serving."""
    standins: dict[str, StandinHandle] = {
        name: start_standin(name) for name in ("alpha", "beta", "gamma", "delta")}
    redirector = None
    try:
        config_dir = tmp_path / "config"
        config_dir.mkdir()
        (config_dir / "federation.yaml").write_text(
            FEDERATION_YAML.format(**{n: s.url for n, s in standins.items()})
            + DELTA.format(delta=standins["delta"].url))
        published = tmp_path / "redirector" / "config.json"
        published.parent.mkdir()
        publish_file(load_federation(config_dir), published)
        redirector = start_redirector(published, tmp_path / "redirector.log")
        wait_for(lambda: set(redirector.state()[0]) == {"alpha", "beta"}, "alpha and beta")
        yield config_dir, published, redirector
    finally:
        if redirector is not None:
            stop(redirector.proc)
        for standin in standins.values():
            standin.stop()


def run(config_dir: Path, args: list[str], log: Path) -> tuple[int, str]:
    process = Process(config_dir, args, log)
    try:
        code = process.wait(120)
    finally:
        process.kill()
    return code, process.stderr()


def held_then_stopped(config_dir: Path, args: list[str], log: Path) -> tuple[int, str]:
    """A ramp run until it holds a step, then SIGTERM: its exit code and stderr."""
    process = Process(config_dir, args, log)
    try:
        wait_for(lambda: "holding gamma at step " in process.stderr() or
                 process.proc.poll() is not None, "the ramp to hold")
        process.proc.send_signal(signal.SIGTERM)
        code = process.wait(120)
    finally:
        process.kill()
    return code, process.stderr()


def assert_published_is_config(config_dir: Path, published: Path) -> None:
    fed = load_federation(config_dir)
    generation, hosts = published_state(published)
    assert generation == fed.generation
    for name, member in fed.members.items():
        if member.weight > 0:
            assert hosts[name][0] == member.weight, (name, hosts[name], member.weight)


# -- 1. a resume whose step weight moved re-applies it ---------------------------------------


def test_two_members_advanced_alternately_never_roll_back(
    four_members: tuple[Path, Path, RedirectorProcess], tmp_path: Path,
) -> None:
    """ramp.yml's pattern: each member's --advance in turn. Each start changes the others'
    weights, so the other member's step needs another weight: written and published again,
    then waited for; no rollback, no timeout."""
    config_dir, published, redirector = four_members
    logs = []
    for turn, member in enumerate(("gamma", "delta", "gamma", "delta")):
        code, log = run(config_dir, ramp_args(published, redirector, member, "--advance",
                                              "--steps", "5", "--hold", "1h"),
                        tmp_path / f"{turn}-{member}.log")
        assert code == 0, log
        assert "rolled back" not in log and "rolling back" not in log
        logs.append(log)
    assert "writing and publishing the step again" in logs[2]  # delta moved gamma's step
    fed = load_federation(config_dir)
    for member in ("gamma", "delta"):
        ramp = fed.members[member].ramp
        assert ramp is not None and ramp.step == 0 and ramp.rolled_back is None
        assert fed.members[member].weight > 0
    assert_published_is_config(config_dir, published)
    assert redirector.state()[1] == fed.generation


def test_hand_edit_and_generation_bump_then_rerun(
    federation: StandinFederation, published: Path, redirector_process: RedirectorProcess,
    tmp_path: Path,
) -> None:
    config_dir = federation.config_dir
    code, log = run(config_dir, ramp_args(published, redirector_process, "gamma", "--advance",
                                          "--steps", "5", "--hold", "1h"), tmp_path / "a.log")
    assert code == 0, log
    # a maintainer gives alpha more weight by hand and bumps the generation, as the README
    # says to; nothing published yet
    text = federation.path.read_text()
    edited = text.replace("generation: 1\n", "generation: 2\n").replace(
        "    weight: 60 ", "    weight: 70 ")
    assert edited.count("generation: 2") == 1 and "weight: 70" in edited
    federation.path.write_text(edited)
    code, log = run(config_dir, ramp_args(published, redirector_process, "gamma", "--advance"),
                    tmp_path / "b.log")
    assert code == 0, log
    assert "rolled back" not in log and "rolling back" not in log
    assert "gamma needs weight 5.78947 for it (config has 5.26316); writing and publishing " \
           "the step again" in log
    fed = federation.load()
    assert fed.generation == 3 and fed.members["alpha"].weight == 70  # the edit kept
    assert fed.members["gamma"].weight == round_weight(share_to_weight(5, 110), 110, 5)
    assert_published_is_config(config_dir, published)
    assert published_state(published)[1]["alpha"] == (70, False)


# -- 2. redirector config --output is a compare-and-swap publish -----------------------------


def test_redirector_config_output_refuses_an_older_generation(
    federation: StandinFederation, published: Path, tmp_path: Path,
) -> None:
    data = json.loads(published.read_text())
    data["generation"] = 5  # a ramp elsewhere has moved on since this checkout
    published.write_text(json.dumps(data))
    code, log = run(federation.config_dir, ["redirector", "config", "--output", str(published)],
                    tmp_path / "config.log")
    assert code == 1, log
    assert f"refused to publish generation 0 of the weights to file:{published}" in log
    assert "Update federation.yaml (git pull) and run again" in log
    assert json.loads(published.read_text()) == data  # untouched
    # a new file is written as before
    fresh = tmp_path / "fresh.json"
    code, log = run(federation.config_dir, ["redirector", "config", "-o", str(fresh)],
                    tmp_path / "fresh.log")
    assert code == 0 and json.loads(fresh.read_text())["generation"] == 0


# -- 3. a member in service is not ramped ----------------------------------------------------


def test_a_member_in_service_is_refused(federation: StandinFederation, published: Path,
                                       tmp_path: Path) -> None:
    text = federation.path.read_text().replace("weight: 0   ", "weight: 15  ")
    federation.path.write_text(text)
    for extra in ((), ("--dry-run",)):
        code, log = run(federation.config_dir,
                        ramp_args(published, None, "gamma", *extra), tmp_path / "svc.log")
        assert code == 2, log
        assert "gamma is in service at 13.04% (weight 15): a ramp starts from 0; use " \
               "`federation-deploy traffic set gamma --weight W`" in log
    assert federation.path.read_text() == text


# -- 4. a stale checkout is told to update ---------------------------------------------------


def test_a_stale_checkout_is_told_to_update(
    federation: StandinFederation, published: Path, redirector_process: RedirectorProcess,
    tmp_path: Path,
) -> None:
    data = json.loads(published.read_text())
    data["generation"] = 1  # another machine published generation 1 (same weights)
    published.write_text(json.dumps(data))
    wait_for(lambda: redirector_process.state()[1] == 1, "the redirector to serve generation 1")
    before = federation.path.read_text()
    code, log = run(federation.config_dir,
                    ramp_args(published, redirector_process, "gamma", "--advance"),
                    tmp_path / "stale.log")
    assert code == 1, log
    assert "federation.yaml here is older than what is served: update it (git pull) and run " \
           "again" in log
    assert "written here" not in log and "resumes" not in log
    assert federation.path.read_text() == before


# -- 5 and 6. a publish that fails after the write; a held lock talks ------------------------


def test_bad_publish_directory_refused_before_writing(
    federation: StandinFederation, tmp_path: Path,
) -> None:
    before = federation.path.read_text()
    wrong = tmp_path / "no-such-directory" / "config.json"
    code, log = run(federation.config_dir, ramp_args(wrong, None, "gamma"), tmp_path / "x.log")
    assert code == 2, log
    assert "directory" in log and "does not exist" in log
    assert federation.path.read_text() == before  # nothing written


def test_publish_failing_after_the_write_says_what_config_holds(
    federation: StandinFederation, published: Path, tmp_path: Path,
) -> None:
    # the test holds the publish lock (its pid in it, as the tool writes it): the ramp writes
    # federation.yaml, says whose lock it waits for; the target directory then goes away
    fd = os.open(lock_path(published), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    first = Process(federation.config_dir,
                    ramp_args(published, None, "gamma", "--steps", "5", "--hold", "1h"),
                    tmp_path / "first.log")
    moved = published.parent.with_name("moved")
    try:
        wait_for(lambda: f"waiting for the publish lock held by pid {os.getpid()}"
                 in first.stderr(), "the ramp to say whose lock it waits for")
        assert "step: 0" in federation.path.read_text()
        published.parent.rename(moved)
        os.close(fd)
        fd = -1
        code = first.wait()
    finally:
        if fd >= 0:
            os.close(fd)
        first.kill()
    log = first.stderr()
    assert code == 1, log
    assert (f"{federation.path} holds step 1/2 (5%) (generation 1), not yet published: rerun "
            "with a working --publish") in log
    moved.rename(published.parent)
    assert published_state(published)[0] == 0
    # the rerun publishes and holds the hour config keeps; SIGTERM then ends it (an event,
    # not the end of the hold on the real clock)
    code, log = held_then_stopped(federation.config_dir, ramp_args(published, None, "gamma"),
                                  tmp_path / "rerun.log")
    assert code == 143, log
    assert "publishing generation 1 from config" in log and "rolled back" not in log
    gamma = federation.load().members["gamma"]
    assert gamma.weight > 0 and gamma.ramp is not None and gamma.ramp.step == 0
    assert_published_is_config(federation.config_dir, published)


class StepClock:
    def __init__(self) -> None:
        self.t = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def test_a_wait_for_the_redirector_talks_every_15_seconds(
    federation: StandinFederation,
) -> None:
    clock = StepClock()
    said: list[str] = []
    io = RampIO(publish=lambda fed: None, clock=Clock(now=clock.now, sleep=clock.sleep),
                active_hosts=lambda url, timeout: {"alpha": {"weight": 60}},
                member_health=lambda url, timeout: CheckResult(True, "ok"),
                live_generation=lambda url, timeout: 0, progress=said.append)
    settings = RampSettings(gate="time", redirector_url="http://127.0.0.1:9", settle_timeout=60,
                            poll_interval=1)
    watch = RedirectorWatch("gamma", settings, io, on_newer=lambda: None)
    failure = watch.wait_for(federation.load(), {"alpha": 60.0, "gamma": 5.0}, True)
    assert failure is not None and "did not report gamma at weight 5 within 1m" in failure
    waiting = [line for line in said if line.startswith("waiting for the redirector")]
    assert len(waiting) == 3  # at 15, 30 and 45 s of 60
    assert waiting[0].startswith("waiting for the redirector to serve generation 0 (15s of 1m")


# -- 7. SIGTERM ------------------------------------------------------------------------------


def test_sigterm_on_a_holding_ramp_exits_143(
    federation: StandinFederation, published: Path, tmp_path: Path,
) -> None:
    held = Process(federation.config_dir,
                   ramp_args(published, None, "gamma", "--steps", "5", "--hold", "120s"),
                   tmp_path / "held.log")
    try:
        wait_for(lambda: "holding gamma at step 1/" in held.stderr(), "the hold")
        held.proc.send_signal(signal.SIGTERM)
        assert held.wait() == 143, held.stderr()
    finally:
        held.kill()
    assert f"interrupted: {federation.path} keeps the ramp of gamma" in held.stderr()


# -- 8. a rollback pauses the ramp -----------------------------------------------------------


def test_a_rolled_back_ramp_is_paused_and_described_alike(
    federation: StandinFederation, published: Path, tmp_path: Path,
) -> None:
    config_dir = federation.config_dir
    federation.standins["gamma"].set_healthy(False)
    code, log = run(config_dir, ramp_args(published, None, "gamma", "--advance", "--steps",
                                          "5", "--hold", "1h"), tmp_path / "fail.log")
    assert code == 1 and "rolled back to 0 (before the first step)" in log, log
    ramp = federation.load().members["gamma"].ramp
    assert ramp is not None and ramp.step == -1 and ramp.rolled_back is not None
    federation.standins["gamma"].set_healthy(True)
    # the scheduled job: not advanced, nothing written, exit 0
    before = federation.path.read_text()
    advanced = subprocess.run([CLI, "--config-dir", str(config_dir),
                               *ramp_args(published, None, "gamma", "--advance")],
                              capture_output=True, text=True)
    assert advanced.returncode == 0, advanced.stderr
    assert advanced.stdout.startswith("the ramp of gamma at 0 (before the first step) is not "
                                      "advanced: it is paused since a rollback")
    assert federation.path.read_text() == before
    matrix = subprocess.run([CLI, "--config-dir", str(config_dir), "ci-matrix", "--ramping"],
                            capture_output=True, text=True, check=True)
    assert json.loads(matrix.stdout)["include"] == []  # ramp.yml does not pick it
    # traffic, members and the dry run say it the same way
    said = {"advance": advanced.stdout}
    for name, args in (("traffic", ["traffic"]), ("members", ["members"]),
                       ("dry-run", ["ramp", "gamma", "--dry-run"])):
        done = subprocess.run([CLI, "--config-dir", str(config_dir), *args],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        said[name] = done.stdout + done.stderr
    phrase = (f"paused since a rollback ({ramp.rolled_back}): the scheduled --advance leaves "
              "it alone; `federation-deploy ramp gamma` restarts it")
    for name, text in said.items():
        assert phrase in text.replace("\n", " ") or phrase in text, (name, text)
    # a person restarts it: it takes step 1 and holds its hour (SIGTERM then ends it: an
    # event, not the end of the hold on the real clock)
    code, log = held_then_stopped(config_dir, ramp_args(published, None, "gamma"),
                                  tmp_path / "again.log")
    assert code == 143, log
    assert "restarting the ramp of gamma, paused since its rollback" in log
    assert "holding gamma at step 1/2 (5%)" in log
    gamma = federation.load().members["gamma"]
    assert gamma.ramp is not None and gamma.ramp.step == 0 and not gamma.ramp.paused
    assert gamma.weight > 0
    assert_published_is_config(config_dir, published)
