"""A hook's attempts and timeout (cd.yml's retried post-deploy tests: 3 attempts, 10 minutes
each), with real processes."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.adopt.test_adopted_repo import add_hooks, invoke

# fails until its third run (a counter file in the config directory, where hooks run)
FLAKY = ("import pathlib, sys; p = pathlib.Path('runs'); n = int(p.read_text() if p.exists() "
         "else 0) + 1; p.write_text(str(n)); print('run', n); sys.exit(0 if n >= 3 else 5)")
# blocks forever without sleeping: reads a pipe nobody writes
BLOCKS = "import os; r, w = os.pipe(); os.read(r, 1)"


def test_a_hook_runs_again_up_to_its_attempts(adopted: Path) -> None:
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "post-tests", "after": "verify", "attempts": 3,
         "argv": [sys.executable, "-c", FLAKY]}])
    result = invoke(adopted, "deploy", "hetzner-2i2c", "--stage", "post-tests", "--yes")
    assert result.exit_code == 0, result.output
    assert (adopted / "runs").read_text() == "3"
    assert "hook post-tests failed with exit 5 (attempt 1 of 3): running it again" \
        in result.stderr
    (adopted / "runs").unlink()
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "post-tests", "after": "verify", "attempts": 2,
         "argv": [sys.executable, "-c", FLAKY]}])
    result = invoke(adopted, "deploy", "hetzner-2i2c", "--stage", "post-tests", "--yes")
    assert result.exit_code == 1
    assert "hook 'post-tests' of hetzner-2i2c (after verify" in result.stderr
    assert "failed with exit 5 (2 attempts)" in result.stderr


def test_a_hook_that_runs_too_long_is_killed_and_counts_as_failed(adopted: Path) -> None:
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "post-tests", "after": "verify", "attempts": 2, "timeout": 0.5,
         "argv": [sys.executable, "-c", BLOCKS]}])
    result = invoke(adopted, "deploy", "hetzner-2i2c", "--stage", "post-tests", "--yes")
    assert result.exit_code == 1
    assert "hook post-tests timed out after 0.5s (attempt 1 of 2): running it again" \
        in result.stderr
    assert "timed out after 0.5s (2 attempts)" in result.stderr


def test_attempts_and_timeout_are_checked(adopted: Path) -> None:
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "post-tests", "after": "verify", "attempts": 0, "timeout": -1,
         "argv": ["true"]}])
    result = invoke(adopted, "validate", "--without-secrets")
    assert result.exit_code == 2
    assert "members.hetzner-2i2c.hooks[0].attempts: expected an integer from 1 to 100" \
        in result.stderr
    assert "members.hetzner-2i2c.hooks[0].timeout: expected a number of seconds > 0" \
        in result.stderr
