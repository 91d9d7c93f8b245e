"""The repository's own config/ is checked here, and only here: by `validate` (as CI does).
Every other test reads the fixture federation (tests/fixtures/federation/), so adding a member
to config/federation.yaml changes no test; the second test proves it on a copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # the CLI in subprocesses

# The tests that read config/federation.yaml before issue 30 (28 failed with a sixth member):
# golden files, ci-matrix, member counts and shares, completion, the chart table.
ONCE_BROKEN = (
    "tests/cli/test_completion.py",
    "tests/config/test_charts_table.py",
    "tests/config/test_loader.py",
    "tests/config/test_editor_schema.py",
    "tests/charts/test_federation_redirect.py",
    "tests/commands/test_charts_bump.py",
    "tests/cli/test_main.py",
    "tests/values/test_golden.py",
    "tests/values/test_render.py",
    "tests/config/test_ci_matrix.py",
    "tests/test_workflows.py",
)

NEW_MEMBER = """
  # added by tests/test_live_config.py: a sixth member, as a maintainer adds one
  seabird:
    url: https://binder.seabird.example.org
    cloud: gcp
    weight: 5
    kubernetes_version: "1.29"
    cluster:
      project: seabird-project
      location: europe-west1
      name: seabird
    releases:
      - name: binderhub
        chart: binderhub
        namespace: seabird
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "federation_deploy.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_live_config_is_valid() -> None:
    proc = cli("validate", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "config valid:" in proc.stderr


def copy_repository(dest: Path) -> Path:
    """The files git tracks (and bin/helm), as a fresh clone has them."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            (dest / name).symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, dest / name)
    return dest


def test_a_member_added_to_the_live_config_breaks_no_test(tmp_path: Path) -> None:
    repo = copy_repository(tmp_path / "repo")
    federation = repo / "config" / "federation.yaml"
    federation.write_text(federation.read_text() + NEW_MEMBER)
    (repo / "config" / "values" / "seabird.yaml").write_text("binderhub: {}\n")
    proc = cli("validate", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "6 members" in proc.stderr
    assert yaml.safe_load(federation.read_text())["members"]["seabird"]["weight"] == 5

    env = {**os.environ, "PATH": f"{REPO / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("FEDERATION_DEPLOY_CONFIG_DIR", None)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-n", "0", "-m", "not terraform", *ONCE_BROKEN],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert tests.returncode == 0, tests.stdout[-6000:]
