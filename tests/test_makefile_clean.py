"""`make clean` removes this checkout's files only: $TMPDIR/pytest-of-$USER holds the pytest
folders of every other session of the same uid (a shared machine), and is left alone."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_clean_leaves_other_sessions_pytest_folders_alone() -> None:
    env = {**os.environ, "TMPDIR": "/tmp/shared-tmp"}
    dry = subprocess.run(["make", "-n", "clean"], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    assert "rm -rf" in dry
    assert "pytest-of" not in dry, dry
    assert "/tmp/shared-tmp/federation-deploy-pytest-" in dry  # this checkout's own folder
