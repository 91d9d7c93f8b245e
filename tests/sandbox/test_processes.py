"""`sandbox down` stops the services `sandbox up` left running together, says what it stops,
does not wait for services that already exited (zombies nobody reaps, issue 30), and never
signals a PID that belongs to another process now (issue 29)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from federation_deploy.sandbox.federation import SandboxState, Service, sandbox_down
from federation_deploy.sandbox.processes import _alive, process_start

pytestmark = pytest.mark.slow  # real processes started and stopped

ORPHAN = ("import subprocess, sys\n"
          "child = subprocess.Popen(['sleep', '300'], start_new_session=True,\n"
          "                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
          "print(child.pid)\n")


def orphan() -> int:
    """A process in its own session whose parent has exited, as `sandbox up`'s services are
    once `up` returned: not a child of this process."""
    out = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return int(out.strip())


def test_down_stops_every_service_at_once_and_says_which(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    root.mkdir()
    pids = [orphan() for _ in range(3)]
    state = SandboxState(root=str(root), config_dir=str(root / "config"), services=[
        Service(name=f"member-{n}", pid=pid, url="http://127.0.0.1:1", log="",
                started=process_start(pid))
        for n, pid in enumerate(pids)])
    state.save()
    said: list[str] = []
    started = time.monotonic()
    stopped, left_alone = sandbox_down(root, said.append)
    assert left_alone == []
    elapsed = time.monotonic() - started
    assert stopped == ["member-0", "member-1", "member-2"]
    assert said[0].startswith("stopping member-0, member-1, member-2 (together")
    # one at a time, each waited for until its 10 s ran out, took half a minute
    assert elapsed < 5, elapsed
    assert not any(_alive(pid) for pid in pids)
    assert not root.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_down_leaves_alone_a_pid_that_is_not_the_sandboxs(tmp_path: Path) -> None:
    """A service exited and its PID went to an unrelated process (here: one this test started
    in its own group, as a shell job or a daemon is): `down` used to kill its whole process
    group. The start time recorded with the PID tells them apart."""
    root = tmp_path / "sandbox"
    root.mkdir()
    ours = orphan()
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        state = SandboxState(root=str(root), config_dir=str(root / "config"), services=[
            Service(name="member-0", pid=ours, url="http://127.0.0.1:1", log="",
                    started=process_start(ours)),
            # what `up` recorded for the service whose PID the stranger has now
            Service(name="redirector", pid=stranger.pid, url="http://127.0.0.1:1", log="",
                    started="1"),
            # a state written before start times were recorded: not provably ours either
            Service(name="prometheus", pid=stranger.pid, url="http://127.0.0.1:1", log=""),
        ])
        state.save()
        stopped, left_alone = sandbox_down(root)
        assert stopped == ["member-0"]
        assert [line.split(":")[0] for line in left_alone] == ["redirector", "prometheus"]
        assert f"PID {stranger.pid} belongs to another process now" in left_alone[0]
        assert stranger.poll() is None, "the unrelated process was killed"
        assert not _alive(ours)
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_down_through_the_cli_says_what_it_left_alone(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from federation_deploy.cli.main import cli

    root = tmp_path / "sandbox"
    root.mkdir()
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        SandboxState(root=str(root), config_dir=str(root / "config"), services=[
            Service(name="redirector", pid=stranger.pid, url="http://127.0.0.1:1", log="",
                    started="1")]).save()
        result = CliRunner().invoke(cli, ["sandbox", "down", "--dir", str(root)])
        assert result.exit_code == 0, result.output
        assert "warning: redirector: not stopped" in result.stderr
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
