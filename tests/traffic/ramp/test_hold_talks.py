"""A ramp that talks: the hold's heartbeat read from the stderr of the real CLI while it runs,
Ctrl-C answered with the exact commands that resume and abort, and the CI job summary."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from queue import Empty, Queue

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands.ramp import run_ramp
from federation_deploy.durations import parse_duration
from federation_deploy.traffic.ramp.engine import RampIO, RampSettings
from tests.helpers.standin_federation import RedirectorThread, StandinFederation
from tests.traffic.ramp.test_ramp_live import published_weights

EXE = shutil.which("federation-deploy") or str(
    Path(__file__).resolve().parents[3] / ".venv" / "bin" / "federation-deploy")
HEARTBEAT = re.compile(r"^step 1/2 at 5\.00%: healthy, (\d+m)?(\d+s)? left$")


class StderrLines:
    """The lines of a running process's stderr, as they come (a reader thread)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: Queue[str | None] = Queue()
        assert process.stderr is not None
        stream = process.stderr

        def read() -> None:
            for line in stream:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=read, daemon=True).start()

    def until(self, pattern: re.Pattern[str], timeout: float = 60, most: int = 200) -> str:
        """The first line matching pattern; fails (with what was seen) on EOF, timeout, or
        after `most` other lines."""
        for _ in range(most):
            try:
                line = self._queue.get(timeout=timeout)
            except Empty:
                raise AssertionError(f"no line matching {pattern.pattern!r}: {self.seen}") from None
            if line is None:
                raise AssertionError(f"stderr ended before {pattern.pattern!r}: {self.seen}")
            self.seen.append(line)
            if pattern.search(line):
                return line
        raise AssertionError(f"no line matching {pattern.pattern!r}: {self.seen}")

    def rest(self) -> list[str]:
        lines = []
        while (line := self._queue.get(timeout=60)) is not None:
            self.seen.append(line)
            lines.append(line)
        return lines


def test_hold_heartbeat_streams_and_interrupt_says_how_to_resume_and_abort(
    federation: StandinFederation, published: Path, redirector: RedirectorThread
) -> None:
    argv = [EXE, "--config-dir", str(federation.config_dir), "ramp", "gamma", "--gate", "time",
            "--steps", "5", "--hold", "10m", "--check-interval", "0.2s", "--heartbeat", "0",
            "--publish", f"file:{published}", "--redirector-url", redirector.url,
            "--settle-timeout", "20s", "--yes"]
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "CI")}
    summary = published.parent / "step-summary.md"
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**env, "GITHUB_ACTIONS": "true",
                                               "GITHUB_STEP_SUMMARY": str(summary)})
    try:
        stderr = StderrLines(process)
        # the first line names the configured ramp policy (the default, sticky) and what it does
        stderr.until(re.compile(r"^ramp of gamma: 5%, 100%, hold 10m after each step; "
                                r"ramp_policy sticky: the member gets a set of repositories "))
        # time left in whole seconds, as the heartbeat says it
        stderr.until(re.compile(
            r"^holding gamma at step 1/2 \(5%\) until \S+ \((10m|9m\d+s)\)$"))
        # a line per check while the process runs (--heartbeat 0): time left counts down
        first = stderr.until(HEARTBEAT)
        second = stderr.until(HEARTBEAT)
        assert process.poll() is None  # read while it runs, not after it exited
        left = [parse_duration(line.split(", ")[1].removesuffix(" left"))
                for line in (first, second)]
        assert 570 <= left[1] <= left[0] <= 600
        process.send_signal(signal.SIGINT)
        rest = stderr.rest()
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "\n".join(rest)
    assert f"interrupted: {federation.config_dir / 'federation.yaml'} keeps the ramp of gamma " \
           "at step 1/2 (5%), and those weights were published" in text
    resume = next(line for line in rest if line.startswith("  resume: "))
    # the job's summary says it too: where it stopped and how to resume
    written = summary.read_text()
    assert "**interrupted**: " in written and "at step 1/2 (5%)" in written, written
    assert f"- resume: `{resume.split(': ', 1)[1]}`" in written, written
    abort = next(line for line in rest if line.startswith("  abort:  "))
    common = ["federation-deploy", "--config-dir", str(federation.config_dir), "ramp", "gamma"]
    assert shlex.split(resume.split(": ", 1)[1]) == [
        *common, "--publish", f"file:{published}", "--redirector-url", redirector.url,
        "--gate", "time", "--check-interval", "0.2s", "--heartbeat", "0s", "--settle-timeout",
        "20s", "--yes"]
    assert shlex.split(abort.split(":  ", 1)[1]) == [
        *common, "--abort", "--publish", f"file:{published}", "--redirector-url", redirector.url,
        "--settle-timeout", "20s", "--yes"]
    # config and the published weights agree at the step config keeps
    gamma = federation.load().members["gamma"]
    assert gamma.ramp is not None and gamma.ramp.step == 0
    assert published_weights(published)["gamma"] == (gamma.weight, True)

    # the abort command, run as printed, does what it says
    words = shlex.split(abort.split(":  ", 1)[1])
    done = subprocess.run([EXE, *words[1:]], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "ramp of gamma aborted: weight 0" in done.stdout
    gamma = federation.load().members["gamma"]
    assert gamma.ramp is None and gamma.weight == 0


def test_heartbeat_at_most_once_per_interval(federation: StandinFederation,
                                             published: Path) -> None:
    """With a fake clock: a 10-minute hold checked every 5 s says how it is once a minute."""
    from datetime import UTC, datetime, timedelta

    from federation_deploy.traffic.live import CheckResult
    from federation_deploy.traffic.publish import make_publisher, parse_publish_target
    from federation_deploy.traffic.ramp.engine import Clock

    now = [datetime(2030, 1, 1, tzinfo=UTC)]

    def sleep(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)

    said: list[str] = []
    io = RampIO(publish=make_publisher(parse_publish_target(f"file:{published}")),
                clock=Clock(now=lambda: now[0], sleep=sleep),
                member_health=lambda url, timeout: CheckResult(True, "ok"),
                progress=said.append)
    settings = RampSettings(gate="time", check_interval=5.0, heartbeat_interval=60.0)
    from federation_deploy.commands.ramp import RampEngine, resolve_plan  # noqa: I001

    fed = federation.load()
    plan = resolve_plan(fed, "gamma", (5.0,), None, "10m")
    RampEngine(fed, plan, settings, io).run()
    beats = [line for line in said if line.startswith("step 1/2 at 5.00%: healthy")]
    # 10 minutes of checks every 5 s: one line a minute, the first a minute in
    assert beats[0] == "step 1/2 at 5.00%: healthy, 9m left"
    assert beats[1] == "step 1/2 at 5.00%: healthy, 8m left"
    assert len(beats) == 9
    assert all(HEARTBEAT.match(b) for b in beats)


def test_ramp_summary_under_github_actions(
    federation: StandinFederation, published: Path, redirector: RedirectorThread,
    tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "CI": "true"}
    result = CliRunner().invoke(cli, [
        "--config-dir", str(federation.config_dir), "ramp", "gamma", "--gate", "time",
        "--steps", "5",
        "--hold", "0.3s", "--check-interval", "0.1s", "--publish", f"file:{published}",
        "--redirector-url", redirector.url, "--settle-timeout", "20s"], env=env)
    assert result.exit_code == 0, result.stderr
    text = summary.read_text()
    assert text.startswith("### ramp of `gamma`\n")
    assert "**complete**: ramp of gamma complete: weight 100 (50.00% of launches)" in text
    assert "| member | weight | share | ramp |" in text
    assert "| gamma | 100 | 50.00% | - |" in text
    assert "| alpha | 60 | 30.00% | - |" in text


def test_an_unwritable_summary_is_a_warning_after_a_finished_ramp(
    federation: StandinFederation, published: Path, redirector: RedirectorThread,
    tmp_path: Path
) -> None:
    """Issue 29: the weights were live and the ramp complete, then appending to an
    unwritable $GITHUB_STEP_SUMMARY turned the run into exit 1 with a traceback."""
    unwritable = tmp_path / "a-directory"
    unwritable.mkdir()
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(unwritable), "CI": "true"}
    result = CliRunner().invoke(cli, [
        "--config-dir", str(federation.config_dir), "ramp", "gamma", "--gate", "time",
        "--steps", "5",
        "--hold", "0.3s", "--check-interval", "0.1s", "--publish", f"file:{published}",
        "--redirector-url", redirector.url, "--settle-timeout", "20s"], env=env)
    assert result.exit_code == 0, result.stderr
    assert "warning: the job summary ($GITHUB_STEP_SUMMARY) was not written" in result.stderr
    assert "Traceback" not in result.stderr
    gamma = federation.load().members["gamma"]
    assert gamma.weight == 100 and gamma.ramp is None


def test_rollback_summary_under_github_actions(
    federation: StandinFederation, published: Path, redirector: RedirectorThread,
    tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    federation.standins["gamma"].set_healthy(False)
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "CI": "true"}
    result = CliRunner().invoke(cli, [
        "--config-dir", str(federation.config_dir), "ramp", "gamma", "--gate", "time",
        "--steps", "5",
        "--hold", "1s", "--check-interval", "0.1s", "--publish", f"file:{published}",
        "--redirector-url", redirector.url, "--settle-timeout", "5s"], env=env)
    assert result.exit_code == 1, result.stderr
    text = summary.read_text()
    assert "**rolled back**: ramp of gamma rolled back to 0 (before the first step)" in text
    assert "| gamma | 0 | 0.00% | not started |" in text


@pytest.mark.parametrize("interval", [0.0, 60.0])
def test_run_ramp_keeps_working_with_any_heartbeat(federation: StandinFederation,
                                                   published: Path,
                                                   redirector: RedirectorThread,
                                                   interval: float) -> None:
    from federation_deploy.traffic.publish import make_publisher, parse_publish_target

    said: list[str] = []
    outcome = run_ramp(federation.load(), "gamma",
                       make_publisher(parse_publish_target(f"file:{published}")),
                       steps=(5,), hold="0.5s", progress=said.append,
                       settings=RampSettings(gate="time", redirector_url=redirector.url,
                                             check_interval=0.1,
                                             poll_interval=0.05, settle_timeout=10.0,
                                             heartbeat_interval=interval))
    assert outcome.status == "complete"
    beats = [line for line in said if HEARTBEAT.match(line)]
    # interval 0: a line at every check (how many checks fit in the hold depends on the
    # machine's load; their spacing is tested with a fake clock above); 60 s: none in 0.5 s
    assert (len(beats) >= 1) if interval == 0 else beats == []
