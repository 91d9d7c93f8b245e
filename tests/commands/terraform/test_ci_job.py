"""ci.yml's terraform job, run as shipped on copies of the stacks: skips what it cannot install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from federation_deploy.actions import terraform as tf
from tests.conftest import REPO

pytestmark = pytest.mark.terraform

STEP = "terraform validate every stack (committed lock files only)"


def validate_script() -> str:
    workflow = YAML(typ="safe", pure=True).load((REPO / ".github/workflows/ci.yml").read_text())
    for step in workflow["jobs"]["terraform"]["steps"]:
        if step.get("name") == STEP:
            return str(step["run"])
    raise AssertionError(f"ci.yml's terraform job has no step {STEP!r}")


def run_job(tree: Path, terraform_binary: str, mirror: Path) -> subprocess.CompletedProcess[str]:
    """The step's script under bash -e (as Actions runs it), in a tree holding terraform/."""
    rc = tree / "cli.tfrc"
    rc.write_text(tf.mirror_cli_config(str(mirror)))
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "CHECKPOINT_DISABLE": "1",
           "PATH": f"{Path(terraform_binary).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-e", "-c", validate_script()], cwd=tree, env=env,
                          capture_output=True, text=True, check=False, timeout=600)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "terraform", tmp_path / "terraform",
                    ignore=shutil.ignore_patterns(".terraform", ".fd-work", "*.tfstate*"))
    return tmp_path


def test_job_validates_what_the_mirror_installs_and_skips_the_gcp_stacks(
    terraform_binary: str, plugin_mirror: str, tree: Path
) -> None:
    proc = run_job(tree, terraform_binary, Path(plugin_mirror))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for stack in ("gcp/prod", "gcp/staging"):
        assert f"::warning file=terraform/{stack}::skipped: a provider its lock file pins" in out
    assert "::error" not in out
    # counted from the tree: a maintainer's new stack changes no test
    stacks = [d for d in (tree / "terraform").glob("*/*") if d.is_dir() and d.name != "modules"]
    skipped = [d for d in stacks
               if f"::warning file={d.relative_to(tree).as_posix()}::skipped" in out]
    assert f"validated {len(stacks) - len(skipped)} stacks" in out
    # -lockfile=readonly: the committed lock files were not touched
    for stack in ("aws/curvenote", "gcp/prod"):
        lock = ".terraform.lock.hcl"
        assert (tree / "terraform" / stack / lock).read_bytes() == (
            REPO / "terraform" / stack / lock).read_bytes()


def test_job_fails_on_a_lock_file_that_disagrees(
    terraform_binary: str, plugin_mirror: str, tree: Path
) -> None:
    """A skip is only for a provider that cannot be installed; a wrong lock still fails."""
    lock = tree / "terraform" / "aws" / "curvenote" / ".terraform.lock.hcl"
    lock.write_text(lock.read_text().replace('version     = "5.100.0"', 'version     = "5.99.0"'))
    proc = run_job(tree, terraform_binary, Path(plugin_mirror))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "::error file=terraform/aws/curvenote::terraform init -lockfile=readonly failed" in out


def test_job_fails_when_no_stack_could_be_validated(
    terraform_binary: str, tree: Path
) -> None:
    empty = tree / "empty-mirror"
    empty.mkdir()
    proc = run_job(tree, terraform_binary, empty)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "::error::no terraform stack could be validated" in out
