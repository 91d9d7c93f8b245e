"""Every stack is formatted and parses; GCP stacks (no google provider here) and validate."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.actions import terraform as tf
from federation_deploy.cli.main import cli
from federation_deploy.commands import terraform as tf_commands
from federation_deploy.config import load_federation
from federation_deploy.errors import LockFileError
from federation_deploy.runner import Runner
from tests.conftest import REPO

pytestmark = pytest.mark.terraform

STACKS = ["aws/bootstrap", "aws/modules/binderhub-eks", "aws/curvenote",
          "gcp/modules/mybinder", "gcp/prod", "gcp/staging"]


def test_every_stack_is_formatted(terraform_binary: str) -> None:
    proc = subprocess.run([terraform_binary, "fmt", "-check", "-recursive", "-diff",
                           "-no-color", str(REPO / "terraform")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for stack in STACKS:
        assert list((REPO / "terraform" / stack).glob("*.tf")), stack


@pytest.mark.parametrize("stack", ["gcp/prod", "gcp/staging"])
def test_gcp_stacks_parse_up_to_the_missing_google_provider(
    terraform_binary: str, config_dir: Path, tmp_path: Path, stack: str
) -> None:
    """init reads the whole configuration (modules included) before it installs providers:
    with an empty mirror the only error left is that hashicorp/google is not there."""
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    rc = tmp_path / "cli.tfrc"
    rc.write_text(tf.mirror_cli_config(str(empty)))
    proc = subprocess.run(
        [terraform_binary, "init", "-backend=false", "-input=false", "-no-color"],
        cwd=config_dir.parent / "terraform" / stack, capture_output=True, text=True,
        env={**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "CHECKPOINT_DISABLE": "1"},
        check=False)
    output = proc.stdout + proc.stderr
    assert "- mybinder in ../modules/mybinder" in output
    assert "Failed to query available provider packages" in output
    assert "provider registry.terraform.io/hashicorp/google was not" in " ".join(output.split())
    assert output.count("Error:") == 1, output


def test_gcp_stack_without_lock_file_plan_refuses_validate_warns(
    terraform_binary: str, config_dir: Path
) -> None:
    fed = load_federation(config_dir)
    with pytest.raises(LockFileError, match="gke \\(gcp/prod\\) has no .terraform.lock.hcl"):
        tf_commands.for_member(fed, "gke", Runner(echo=False)).plan()
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "validate"])
    assert result.exit_code == 0, result.stderr
    assert "warning: member gke: terraform stack gcp/prod has no .terraform.lock.hcl" in (
        result.stderr)


def test_validate_fails_on_a_pin_that_disagrees(config_dir: Path) -> None:
    versions = config_dir.parent / "terraform" / "aws" / "curvenote" / "versions.tf"
    versions.write_text(versions.read_text().replace('"1.11.4"', '"1.11.3"'))
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "validate"])
    assert result.exit_code == 2
    assert "aws/curvenote/versions.tf:4: required_version: says '1.11.3'" in result.stderr
