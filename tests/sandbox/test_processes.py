"""`sandbox down` stops the services `sandbox up` left running together, says what it stops,
and does not wait for services that already exited (zombies nobody reaps, issue 30)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from federation_deploy.sandbox.federation import SandboxState, Service, sandbox_down
from federation_deploy.sandbox.processes import _alive

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
        Service(name=f"member-{n}", pid=pid, url="http://127.0.0.1:1", log="")
        for n, pid in enumerate(pids)])
    state.save()
    said: list[str] = []
    started = time.monotonic()
    stopped = sandbox_down(root, said.append)
    elapsed = time.monotonic() - started
    assert stopped == ["member-0", "member-1", "member-2"]
    assert said[0].startswith("stopping member-0, member-1, member-2 (together")
    # one at a time, each waited for until its 10 s ran out, took half a minute
    assert elapsed < 5, elapsed
    assert not any(_alive(pid) for pid in pids)
    assert not root.exists()
