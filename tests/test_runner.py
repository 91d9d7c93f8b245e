"""The subprocess seam: echo, censoring, ToolError's contents, missing tools and timeouts."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from federation_deploy.errors import ToolError
from federation_deploy.runner import CENSORED, Runner, censor

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
