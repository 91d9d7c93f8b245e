"""Weights have one writer (issue 13), with real processes: a `redirector serve` process and
`federation-deploy` processes on stand-in members on 127.0.0.1, publishing with `file:`.

Every test asserts both places at the end: federation.yaml and the published config.json.
Waits are on conditions (a file's content, a log line), never on fixed sleeps.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from federation_deploy.config import load_federation
from federation_deploy.sandbox.member import start_standin
from federation_deploy.traffic.publish import publish_file
from federation_deploy.traffic.weights import lock_path
from tests.helpers.standin_federation import FEDERATION_YAML, StandinFederation

pytestmark = pytest.mark.slow  # ramps and drains as racing CLI processes

CLI = str(Path(sys.executable).parent / "federation-deploy")  # the installed entry point
WAIT = 60.0  # the longest any condition may take on a loaded machine
# a second member that can be ramped (the "ramps of two members")
DELTA = """
  delta:
    url: {delta}
    cloud: kubeconfig
    weight: 0
    target_weight: 50
    cluster:
      kubeconfig: delta-kubeconfig.yml
"""


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Process:
    """A `federation-deploy` process (the real entry point), its stderr in a file."""

    def __init__(self, config_dir: Path, args: list[str], log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.log = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(
            [CLI, "--config-dir", str(config_dir), *args],
            stdout=subprocess.PIPE, stderr=self.handle, stdin=subprocess.DEVNULL, text=True,
            env={**os.environ, **(env or {})},
        )

    def stderr(self) -> str:
        return self.log.read_text()

    def wait(self, timeout: float = WAIT) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            self.handle.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.handle.close()


@dataclass
class RedirectorProcess:
    url: str
    proc: subprocess.Popen[bytes]

    def state(self) -> tuple[dict[str, Any], int | None]:
        data = requests.get(self.url + "/active_hosts", timeout=5).json()
        return data["active_hosts"], data.get("generation")


@pytest.fixture
def redirector_process(federation: StandinFederation, published: Path,
                       tmp_path: Path) -> Iterator[RedirectorProcess]:
    """`federation-deploy redirector serve` watching the published config.json."""
    running = start_redirector(published, tmp_path / "redirector.log")
    try:
        wait_for(lambda: set(running.state()[0]) == {"alpha", "beta"},
                 "alpha and beta in rotation")
        yield running
    finally:
        stop(running.proc)


def start_redirector(config: Path, log: Path) -> RedirectorProcess:
    """`redirector serve` on config, once it says where it listens."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [CLI, "redirector", "serve", "--config", str(config), "--port", "0",
             "--address", "127.0.0.1"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        port = wait_for(lambda: re.search(r"listening on http://127\.0\.0\.1:(\d+)",
                                          log.read_text()), "the redirector to listen")
    except BaseException:
        stop(proc)
        raise
    return RedirectorProcess(f"http://127.0.0.1:{port.group(1)}", proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the redirector finishes in-flight requests), SIGKILL when it does not go."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def published_state(path: Path) -> tuple[int | None, dict[str, tuple[float, bool]]]:
    data = json.loads(path.read_text())
    return data.get("generation"), {n: (h["weight"], bool(h.get("ramp")))
                                    for n, h in data["hosts"].items()}


def ramp_args(published: Path, redirector: RedirectorProcess | None, *extra: str) -> list[str]:
    args = ["ramp", *extra, "--yes", "--gate", "time", "--publish", f"file:{published}",
            "--check-interval", "0.3s", "--settle-timeout", "30s"]
    if redirector is not None:
        args += ["--redirector-url", redirector.url]
    return args


def holding(process: Process) -> bool:
    return "holding gamma at step 1/" in process.stderr()


def held_ramp(federation: StandinFederation, published: Path,
              redirector_process: RedirectorProcess, tmp_path: Path) -> Process:
    """A ramp of gamma holding its one step (5%) for two minutes, for something to race."""
    held = Process(federation.config_dir,
                   ramp_args(published, redirector_process, "gamma", "--steps", "5",
                             "--hold", "120s"), tmp_path / "held.log")
    try:
        wait_for(lambda: holding(held), "the ramp to hold at 5%")
    except BaseException:
        held.kill()
        raise
    return held


# --------------------------------------------------------------------------------------------


def test_abort_during_a_hold_wins(
    federation: StandinFederation, published: Path, redirector_process: RedirectorProcess,
    tmp_path: Path,
) -> None:
    held = held_ramp(federation, published, redirector_process, tmp_path)
    try:
        abort = Process(federation.config_dir,
                        ramp_args(published, redirector_process, "gamma", "--abort"),
                        tmp_path / "abort.log")
        assert abort.wait() == 0, abort.stderr()
        assert held.wait() == 1, held.stderr()
    finally:
        held.kill()
    stopped = held.stderr()
    assert "the ramp of gamma was aborted" in stopped
    assert "without rolling back or publishing" in stopped and "rolling back" not in \
        stopped.replace("without rolling back", "")
    # weight 0 and no ramp block, in both places, at the abort's generation
    fed = federation.load()
    assert fed.members["gamma"].weight == 0 and fed.members["gamma"].ramp is None
    assert fed.generation == 2
    generation, hosts = published_state(published)
    assert generation == 2 and hosts["gamma"] == (0, False)
    assert hosts["alpha"] == (60, False) and hosts["beta"] == (40, False)
    assert redirector_process.state()[1] == 2


def first_exit(runs: list[Process], timeout: float = WAIT) -> int:
    """The index of the first of runs to exit (the others still run)."""
    return int(wait_for(lambda: next((str(i) for i, run in enumerate(runs)
                                      if run.proc.poll() is not None), None),
                        "one of the runs to exit", timeout))


def test_two_ramps_of_one_member_started_together(
    federation: StandinFederation, published: Path, redirector_process: RedirectorProcess,
    tmp_path: Path,
) -> None:
    """Both hold an hour: the one that runs holds while the other is refused, then is
    aborted (an event, not the end of a hold on the real clock)."""
    runs = [Process(federation.config_dir,
                    ramp_args(published, redirector_process, "gamma", "--steps", steps,
                              "--hold", "1h"), tmp_path / f"ramp{i}.log")
            for i, steps in enumerate(("5", "10"))]
    try:
        lose = first_exit(runs)
        win = 1 - lose
        assert runs[lose].wait() == 1, [r.stderr() for r in runs]
        wait_for(lambda: holding(runs[win]), "the other ramp to hold its step")
        assert runs[win].proc.poll() is None, runs[win].stderr()
        # the winner's step alone, in both places; no member in service changed weight
        fed = federation.load()
        gamma = fed.members["gamma"]
        assert gamma.ramp is not None and gamma.ramp.step == 0
        assert list(gamma.ramp.steps) == [(5, 10)[win], 100]
        generation, hosts = published_state(published)
        assert generation == fed.generation == 1 and hosts["gamma"] == (gamma.weight, True)
        assert hosts["alpha"] == (60, False) and hosts["beta"] == (40, False)
        # the loser's hint, followed
        loser = runs[lose].stderr()
        assert "the ramp of gamma already runs on this machine (pid " in loser
        assert "`federation-deploy ramp gamma --abort`" in loser
        assert "ramp gamma" in loser
        abort = Process(federation.config_dir,
                        ramp_args(published, redirector_process, "gamma", "--abort"),
                        tmp_path / "abort.log")
        assert abort.wait() == 0, abort.stderr()
        assert runs[win].wait() == 1, runs[win].stderr()
    finally:
        for run in runs:
            run.kill()
    assert "the ramp of gamma was aborted" in runs[win].stderr()
    fed = federation.load()
    assert fed.members["gamma"].weight == 0 and fed.members["gamma"].ramp is None
    generation, hosts = published_state(published)
    assert generation == fed.generation == 2  # the winner's step and the abort, nothing else
    assert hosts["gamma"] == (0, False)
    assert hosts["alpha"] == (60, False) and hosts["beta"] == (40, False)
    assert fed.members["alpha"].weight == 60 and fed.members["beta"].weight == 40


def test_ramps_of_two_members_from_two_checkouts(
    tmp_path: Path,
) -> None:
    """Two machines (two copies of the config, one published config): the generation alone
    decides. Exactly one ramp proceeds; the other stops, puts its federation.yaml back, and
    no member in service changes weight. Both hold an hour: the winner is aborted from its
    checkout once the loser has exited (an event, not the end of a hold)."""
    standins = {name: start_standin(name) for name in ("alpha", "beta", "gamma", "delta")}
    runs: list[Process] = []
    try:
        text = FEDERATION_YAML.format(**{n: s.url for n, s in standins.items()}) + \
            DELTA.format(delta=standins["delta"].url)
        dirs = []
        for checkout in ("laptop", "ci"):
            config_dir = tmp_path / checkout / "config"
            config_dir.mkdir(parents=True)
            (config_dir / "federation.yaml").write_text(text)
            dirs.append(config_dir)
        published = tmp_path / "redirector" / "config.json"
        published.parent.mkdir()
        publish_file(load_federation(dirs[0]), published)
        runs = [Process(config_dir, ramp_args(published, None, member, "--steps", "5",
                                              "--hold", "1h"), tmp_path / f"{member}.log")
                for config_dir, member in zip(dirs, ("gamma", "delta"), strict=True)]
        lose = first_exit(runs)
        win = 1 - lose
        winner, loser = ("gamma", "delta")[win], ("gamma", "delta")[lose]
        assert runs[lose].wait() == 1, [r.stderr() for r in runs]
        wait_for(lambda: f"holding {winner} at step 1/" in runs[win].stderr(),
                 "the winner to hold its step")
        assert runs[win].proc.poll() is None, runs[win].stderr()
        # the winner's step is served; its checkout says so
        holding_fed = load_federation(dirs[win])
        step = holding_fed.members[winner]
        assert holding_fed.generation == 1 and step.ramp is not None and step.ramp.step == 0
        generation, hosts = published_state(published)
        assert generation == 1 and hosts[winner] == (step.weight, True)
        assert hosts[loser] == (0, False)
        assert hosts["alpha"] == (60, False) and hosts["beta"] == (40, False)
        abort = Process(dirs[win], ramp_args(published, None, winner, "--abort"),
                        tmp_path / "abort.log")
        assert abort.wait() == 0, abort.stderr()
        assert runs[win].wait() == 1, runs[win].stderr()
    finally:
        for run in runs:
            run.kill()
        for standin in standins.values():
            standin.stop()
    assert f"the ramp of {winner} was aborted" in runs[win].stderr()
    message = runs[lose].stderr()
    assert "refused to publish generation 1" in message and "serves generation" in message
    assert "federation.yaml put back to generation 0" in message
    # the loser's checkout is as it was; the winner's has its step and the abort
    lost = load_federation(dirs[lose])
    assert lost.generation == 0 and lost.members[loser].weight == 0
    assert lost.members[loser].ramp is None
    won = load_federation(dirs[win])
    assert won.generation == 2 and won.members[winner].ramp is None
    assert won.members[winner].weight == 0
    generation, hosts = published_state(published)
    assert generation == 2 and hosts[winner] == (0, False)
    assert hosts[loser] == (0, False)
    assert hosts["alpha"] == (60, False) and hosts["beta"] == (40, False)


def test_kill_9_between_write_and_publish_then_rerun(
    federation: StandinFederation, published: Path, redirector_process: RedirectorProcess,
    tmp_path: Path,
) -> None:
    # the test holds the published file's lock: the ramp writes federation.yaml, then waits
    # for the lock in its publish, and is killed there
    fd = os.open(lock_path(published), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    first = Process(federation.config_dir,
                    ramp_args(published, redirector_process, "gamma", "--steps", "5",
                              "--hold", "1h"), tmp_path / "first.log")
    try:
        wait_for(lambda: "step: 0" in federation.path.read_text(), "the first step's write")
        first.proc.send_signal(signal.SIGKILL)
        assert first.wait() == -signal.SIGKILL
    finally:
        first.kill()
        os.close(fd)
    assert published_state(published)[0] == 0  # written, never published
    assert federation.load().generation == 1
    # the rerun resumes the hour-long hold config keeps; once it holds, SIGTERM ends it (an
    # event, not the end of the hold on the real clock)
    rerun = Process(federation.config_dir, ramp_args(published, redirector_process, "gamma"),
                    tmp_path / "rerun.log")
    try:
        wait_for(lambda: holding(rerun), "the rerun to hold step 1")
        rerun.proc.send_signal(signal.SIGTERM)
        assert rerun.wait() == 143, rerun.stderr()
    finally:
        rerun.kill()
    log = rerun.stderr()
    assert "resuming the ramp of gamma at step 1/2 (5%)" in log
    assert "publishing generation 1 from config" in log
    assert "rolled back" not in log and "rolling back" not in log
    fed = federation.load()
    gamma = fed.members["gamma"]
    assert gamma.ramp is not None and gamma.ramp.step == 0 and gamma.weight > 0
    generation, hosts = published_state(published)
    assert generation == fed.generation == 1 and hosts["gamma"] == (gamma.weight, True)
    assert redirector_process.state()[1] == 1  # served, not only written


# A failed publish then a rerun: tests/traffic/ramp/test_resume_and_refusals.py (a bad `file:`
# directory is now refused before anything is written; a publish failing after the write is made
# there).


def test_hand_edit_mid_hold_stops_the_ramp_and_is_kept(
    federation: StandinFederation, published: Path, redirector_process: RedirectorProcess,
    tmp_path: Path,
) -> None:
    held = held_ramp(federation, published, redirector_process, tmp_path)
    try:
        text = federation.path.read_text()
        edited = text.replace("    weight: 60 ", "    weight: 70 ")
        assert edited != text
        # as an editor saves: a new file renamed over the old one (a write in place could be
        # read half-written by the holding ramp, which then reports an invalid file instead)
        partial = federation.path.with_name(".federation.yaml.edit")
        partial.write_text(edited)
        os.replace(partial, federation.path)
        assert held.wait() == 1, held.stderr()
    finally:
        held.kill()
    assert "federation.yaml changed under the ramp of gamma" in held.stderr()
    assert "alpha weight 60 -> 70" in held.stderr()
    assert federation.path.read_text() == edited  # the edit kept, nothing written after it
    generation, hosts = published_state(published)
    # the published config is still the 5% step: nothing published after the edit
    assert generation == 1 and hosts["alpha"] == (60, False) and hosts["gamma"][1] is True


def test_publish_of_an_older_generation_refused_file(
    federation: StandinFederation, published: Path, tmp_path: Path,
) -> None:
    # another machine has published generation 5 since this checkout was made
    data = json.loads(published.read_text())
    data["generation"] = 5
    published.write_text(json.dumps(data))
    before = federation.path.read_text()
    run = Process(federation.config_dir,
                  ramp_args(published, None, "gamma", "--steps", "5", "--hold", "1s"),
                  tmp_path / "old.log")
    assert run.wait() == 1, run.stderr()
    assert "refused to publish generation 1" in run.stderr()
    assert "serves generation 5, newer" in run.stderr()
    assert federation.path.read_text() == before  # put back
    assert json.loads(published.read_text()) == data  # untouched


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_termination_during_deploy_leaves_no_kubeconfig_and_no_kubectl(
    federation: StandinFederation, tmp_path: Path, signum: signal.Signals,
) -> None:
    """SIGTERM (a CI runner cancelling) and SIGHUP (a closed terminal; issue 29: the
    private kubeconfig with its token stayed on disk) end a deploy alike: its kubeconfig
    directory removed, the tool it ran stopped, exit 128 + the signal."""
    secrets = federation.config_dir / "secrets"
    secrets.mkdir()
    (secrets / "gamma-kubeconfig.yml").write_text("apiVersion: v1\nkind: Config\n")
    tools = tmp_path / "tools"
    tools.mkdir()
    pidfile = tmp_path / "kubectl.pid"
    kubectl = tools / "kubectl"
    # a kubectl that hangs on the cluster probe, like one talking to an unreachable cluster
    kubectl.write_text(f'#!/bin/sh\necho $$ > "{pidfile}"\nexec sleep 300\n')
    kubectl.chmod(0o755)
    helm = shutil.which("helm")
    assert helm is not None, "needs helm on PATH (bin/helm: python scripts/fetch_helm.py)"
    temp = tmp_path / "temp"
    temp.mkdir()
    deploy = Process(federation.config_dir, ["deploy", "gamma", "--yes"], tmp_path / "d.log",
                     env={"PATH": f"{tools}:{Path(helm).parent}:{os.environ['PATH']}",
                          "TMPDIR": str(temp)})
    try:
        pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(),
                           "kubectl to start"))
        assert any(temp.glob("federation-deploy-gamma-*/kubeconfig-*"))  # while it runs
        deploy.proc.send_signal(signum)
        assert deploy.wait() == 128 + signum, deploy.stderr()
    finally:
        deploy.kill()
    assert f"interrupted ({signum.name})" in deploy.stderr()
    assert list(temp.iterdir()) == []  # the private kubeconfig directory is gone
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # kubectl was stopped and reaped, not orphaned
