"""Ctrl-C during a helm call reaches helm at the first press, as it does terraform (issue 29
re-trial, item 4: asyncio.run's own SIGINT handler swallowed the first Ctrl-C while helm ran
in its own session, so helm was never told).

A fake helm answers `version --short`, then, for `plugin list`, says it is ready and waits
for SIGINT (event-driven: the test signals once the fake said so)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FAKE_HELM = textwrap.dedent("""\
    #!{python}
    import signal, sys, time
    if sys.argv[1:3] == ["version", "--short"]:
        print("v3.17.2+gcc0bbbd")
        sys.exit(0)
    def stop(signum, frame):
        sys.stderr.write("fake helm: got SIGINT, cleaning up\\n")
        sys.stderr.flush()
        sys.exit(130)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write("fake helm: waiting\\n")
    sys.stderr.flush()
    while True:
        signal.pause()
""")

CALLER = textwrap.dedent("""\
    import sys
    from federation_deploy.actions.helm import Helm
    from federation_deploy.runner import Runner
    helm = Helm(Runner(stream=True, interrupt_grace=60), executable=sys.argv[1])
    try:
        helm.has_diff_plugin()
    except KeyboardInterrupt:
        sys.stderr.write("caller: interrupted\\n")
        sys.exit(130)
    sys.stderr.write("caller: finished without an interrupt\\n")
""")


@pytest.mark.slow  # a subprocess (a real SIGINT to a process group)
def test_the_first_ctrl_c_reaches_helm(tmp_path: Path) -> None:
    helm = tmp_path / "helm"
    helm.write_text(FAKE_HELM.format(python=sys.executable))
    helm.chmod(0o755)
    proc = subprocess.Popen([sys.executable, "-c", CALLER, str(helm)], stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if "fake helm: waiting" in line:
                os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: once
                break
        rest = proc.communicate(timeout=30)[1]  # only keeps a broken test from hanging
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = "".join(seen) + rest
    assert "SIGINT: sent to helm" in stderr, stderr
    assert "fake helm: got SIGINT, cleaning up" in stderr
    assert "caller: interrupted" in stderr and proc.returncode == 130
