"""The subprocess seam: echo, censoring, ToolError's contents, missing tools and timeouts."""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from federation_deploy.errors import ToolError
from federation_deploy.runner import CENSORED, Live, Runner, censor

PY = sys.executable


def test_echo_is_the_shell_quoted_command(tmp_path: Path) -> None:
    out = io.StringIO()
    Runner(echo_to=out).run([PY, "-c", "print('hi there')"], cwd=tmp_path)
    assert out.getvalue() == f"$ (in {tmp_path}) {PY} -c 'print('\"'\"'hi there'\"'\"')'\n"


def test_no_echo_when_switched_off() -> None:
    out = io.StringIO()
    proc = Runner(echo=False, echo_to=out).run([PY, "-c", "print('x')"])
    assert out.getvalue() == "" and proc.stdout == "x\n"


def test_secrets_are_censored_in_echo_and_output() -> None:
    out = io.StringIO()
    runner = Runner(echo_to=out)
    runner.add_secrets(["hunter22", "", 42])  # type: ignore[list-item]  # non-strings skipped
    proc = runner.run([PY, "-c", "import sys; print(sys.argv[1]); print('e ' + sys.argv[1], "
                       "file=sys.stderr)", "hunter22"])
    assert "hunter22" not in out.getvalue() and CENSORED in out.getvalue()
    assert proc.stdout == f"{CENSORED}\n" and proc.stderr == f"e {CENSORED}\n"
    assert proc.args[-1] == "hunter22"  # the process itself got the real value


def test_censor_replaces_longest_first_and_short_values_as_whole_tokens() -> None:
    assert censor("token abcdef and abc", ["abc", "abcdef"]) == f"token {CENSORED} and {CENSORED}"
    # short secrets are censored too (issue 14), but only where they stand alone
    assert censor("a b cab", ["a", "b"]) == f"{CENSORED} {CENSORED} cab"


def test_failure_raises_tool_error_with_argv_code_and_output() -> None:
    runner = Runner(echo=False)
    runner.add_secrets(["s3cret"])
    with pytest.raises(ToolError) as info:
        runner.run([PY, "-c", "import sys; print('out s3cret'); print('bad s3cret', "
                    "file=sys.stderr); sys.exit(3)", "s3cret"])
    error = info.value
    assert error.returncode == 3
    assert error.argv[-1] == CENSORED and "s3cret" not in " ".join(error.argv)
    assert error.stdout == f"out {CENSORED}\n" and error.stderr == f"bad {CENSORED}\n"
    assert f"bad {CENSORED}" in str(error) and "exit 3" in str(error)


def test_ok_codes_and_check_false() -> None:
    runner = Runner(echo=False)
    code = "import sys; sys.exit(2)"
    assert runner.run([PY, "-c", code], ok_codes=(0, 2)).returncode == 2
    assert runner.run([PY, "-c", code], check=False).returncode == 2


def test_input_reaches_stdin() -> None:
    proc = Runner(echo=False).run([PY, "-c", "import sys; print(sys.stdin.read().upper())"],
                                  input="values")
    assert proc.stdout == "VALUES\n"


def test_missing_binary_says_what_to_install(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-tool")
    with pytest.raises(ToolError) as info:
        Runner(echo=False).run([missing, "--version"])
    assert info.value.returncode is None
    assert info.value.summary == f"{missing}: not found"
    assert info.value.hint == "install no-such-tool or put it on PATH"


def test_timeout_is_a_tool_error() -> None:
    with pytest.raises(ToolError) as info:
        Runner(echo=False).run([PY, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert info.value.summary == "timed out after 0.5s" and info.value.returncode is None


def test_spawn_writes_its_log_and_echoes(tmp_path: Path) -> None:
    out = io.StringIO()
    log = tmp_path / "server.log"
    proc = Runner(echo_to=out).spawn([PY, "-c", "print('started')"], log_path=log)
    assert proc.wait(timeout=60) == 0
    assert log.read_text() == "started\n" and (log.stat().st_mode & 0o777) == 0o600
    assert out.getvalue().startswith(f"$ {PY} -c")


# -- streaming ---------------------------------------------------------------------------------


class Lines(io.TextIOBase):
    """An echo_to that hands each line to the test as soon as it is printed."""

    def __init__(self) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.buffer = ""

    def write(self, text: str) -> int:
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            self.queue.put(line)
        return len(text)

    def next(self) -> str:
        return self.queue.get(timeout=60)  # a safety net only; never asserted on


WAIT_FOR_FILE = ("import os, sys, time\nprint('first', flush=True)\n"
                 "while not os.path.exists(sys.argv[1]): time.sleep(0.01)\nprint('second')\n")


def test_live_output_arrives_while_the_tool_still_runs(tmp_path: Path) -> None:
    lines = Lines()
    runner = Runner(echo=False, echo_to=lines, stream=True)  # type: ignore[arg-type]
    go = tmp_path / "go"
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(
        runner.run([PY, "-c", WAIT_FOR_FILE, str(go)], live="all").stdout))
    thread.start()
    assert lines.next() == "first"  # the tool cannot end before `go` exists
    go.touch()
    thread.join(timeout=60)
    assert lines.next() == "second" and result == ["first\nsecond\n"]  # and a full copy kept


def test_live_stderr_only_keeps_stdout_as_data() -> None:
    lines = Lines()
    runner = Runner(echo=False, echo_to=lines, stream=True)  # type: ignore[arg-type]
    proc = runner.run([PY, "-c", "import sys; print('{\"a\": 1}'); print('warn', "
                       "file=sys.stderr)"], live="stderr")
    assert proc.stdout == '{"a": 1}\n' and proc.stderr == "warn\n"
    assert list(lines.queue.queue) == ["warn"]


@pytest.mark.parametrize("stream,live,full,shown", [
    (False, "all", False, []),  # -q: nothing shown, everything kept
    (True, "none", False, []),
    (True, "all", False, ["a: Creating...", "Plan: 1 to add"]),  # refresh lines need -v
    (True, "all", True, ["a: Refreshing state...", "a: Creating...", "Plan: 1 to add"]),
])
def test_what_is_shown_live(stream: bool, live: Live, full: bool, shown: list[str]) -> None:
    lines = Lines()
    runner = Runner(echo=False, echo_to=lines, stream=stream,  # type: ignore[arg-type]
                    full_output=full)
    script = "print('a: Refreshing state...'); print('a: Creating...'); print('Plan: 1 to add')"
    proc = runner.run([PY, "-c", script], live=live, quiet_lines=re.compile("Refreshing state"))
    assert list(lines.queue.queue) == shown
    assert proc.stdout.count("\n") == 3


def test_live_lines_are_censored_also_line_by_line_and_colour_is_kept_out_of_copies() -> None:
    lines = Lines()
    runner = Runner(echo=False, echo_to=lines, stream=True)  # type: ignore[arg-type]
    runner.add_secrets(["-----BEGIN KEY-----\nabcdefghijklmnop\n-----END KEY-----"])
    script = ("print('key line abcdefghijklmnop'); print('\\x1b[32mgreen helm-secret\\x1b[0m')")
    proc = runner.run([PY, "-c", script], live="all", shown_secrets=["helm-secret"])
    assert list(lines.queue.queue) == [f"key line {CENSORED}",
                                       f"\x1b[32mgreen {CENSORED}\x1b[0m"]
    # shown_secrets are the caller's to censor in the returned copy (helm parses it raw)
    assert proc.stdout == f"key line {CENSORED}\ngreen helm-secret\n"


# -- interrupts --------------------------------------------------------------------------------

# The CLI in miniature: a Runner running a tool, SIGTERM handled like Ctrl-C.
PARENT = """
import sys
from federation_deploy.runner import Runner
from federation_deploy.signals import sigterm_as_interrupt
runner = Runner(stream=True, interrupt_grace=float(sys.argv[1]))
with sigterm_as_interrupt():
    try:
        runner.run([sys.executable, "-c", sys.argv[2], sys.argv[3]], live="all")
    except KeyboardInterrupt as exc:
        print("parent interrupted", type(exc).__name__, file=sys.stderr, flush=True)
        sys.exit(130)
"""

# A tool that, on SIGINT or SIGTERM, takes a moment to clean up (as terraform releasing its
# lock) and writes which signal it got; IGNORE makes it ignore both.
TOOL = """
import signal, sys, time
out = sys.argv[1]
def stop(signum, frame):
    if out != "IGNORE":
        time.sleep(0.2)
        open(out, "w").write(signal.Signals(signum).name)
        sys.exit(1)
handler = signal.SIG_IGN if out == "IGNORE" else stop
signal.signal(signal.SIGINT, handler)
signal.signal(signal.SIGTERM, handler)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def interrupt(tmp_path: Path, signum: int, *, grace: float = 60.0, marker: str | None = None,
              group: bool = True) -> tuple[int, str]:
    """Run PARENT, signal it (its process group, as a terminal does, or only it) once the
    tool said ready; return its exit code and stderr."""
    out = marker or str(tmp_path / "tool-stopped")
    parent = subprocess.Popen([PY, "-c", PARENT, str(grace), TOOL, out], stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    assert parent.stderr is not None
    seen = []
    for line in parent.stderr:
        seen.append(line)
        if line.strip() == "ready":
            break
    (os.killpg if group else os.kill)(parent.pid, signum)
    seen += parent.stderr.readlines()
    return parent.wait(timeout=120), "".join(seen)


@pytest.mark.parametrize("group", [True, False], ids=["terminal-group", "process-only"])
def test_ctrl_c_is_forwarded_once_and_the_tool_may_finish(tmp_path: Path, group: bool) -> None:
    code, err = interrupt(tmp_path, signal.SIGINT, group=group)
    assert code == 130 and "parent interrupted KeyboardInterrupt" in err
    assert (tmp_path / "tool-stopped").read_text() == "SIGINT"  # it cleaned up, not killed
    assert f"SIGINT: sent to {os.path.basename(PY)};" in err and "killed" not in err


def test_sigterm_is_forwarded_as_sigterm(tmp_path: Path) -> None:
    code, err = interrupt(tmp_path, signal.SIGTERM)
    assert code == 130 and "parent interrupted Terminated" in err
    assert (tmp_path / "tool-stopped").read_text() == "SIGTERM"


# SIGTERM reaching the CLI while subprocess.Popen is still returning (the tool already runs):
# a Popen that signals its own process just before it returns stands in for that moment.
RACE = """
import os, signal, subprocess, sys
from federation_deploy.runner import Runner
from federation_deploy.signals import sigterm_as_interrupt

class LatePopen(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        with open(sys.argv[2], "w") as pid:
            pid.write(str(self.pid))
        os.kill(os.getpid(), signal.SIGTERM)  # handled at once, inside Popen's constructor

subprocess.Popen = LatePopen
with sigterm_as_interrupt():
    try:
        Runner(interrupt_grace=30).run(["sleep", "300"])
    except KeyboardInterrupt as exc:
        print("interrupted", type(exc).__name__, flush=True)
        sys.exit(130)
"""


def test_an_interrupt_while_the_tool_starts_still_stops_the_tool(tmp_path: Path) -> None:
    pidfile = tmp_path / "tool.pid"
    parent = subprocess.run([PY, "-c", RACE, "unused", str(pidfile)], capture_output=True,
                            text=True, timeout=60)
    assert parent.returncode == 130 and "interrupted Terminated" in parent.stdout, parent.stderr
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped, not left running in its own session


@pytest.mark.slow  # waits out a real grace period
def test_a_tool_that_does_not_stop_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    code, err = interrupt(tmp_path, signal.SIGINT, grace=0.5, marker="IGNORE")
    assert code == 130 and f"{os.path.basename(PY)} did not stop within 0.5s: killed" in err
