"""validate refuses two terraform stacks that share a state or a lock table, and two members on
one stack (issue 30: a copy of terraform/aws/curvenote kept curvenote's backend, and its plan
would have replaced curvenote's resources)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from federation_deploy.commands.validate import validate
from federation_deploy.errors import ConfigError

SEABIRD = """
  seabird:
    url: https://binder.seabird.example.org
    cloud: aws
    weight: 0
    kubernetes_version: "1.29"
    cluster: {region: eu-west-1, name: seabird}
    terraform: {stack: aws/seabird}
"""


def copy_curvenote(config_dir: Path) -> Path:
    """terraform/aws/seabird, copied from curvenote as the README's steps once said."""
    stacks = config_dir.parent / "terraform" / "aws"
    shutil.copytree(stacks / "curvenote", stacks / "seabird",
                    ignore=shutil.ignore_patterns(".terraform", ".fd-work"))
    return stacks / "seabird" / "versions.tf"


def problems(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate(config_dir)
    return [str(p) for p in caught.value.problems]


def test_a_copied_stack_sharing_the_state_is_refused_naming_both(config_dir: Path) -> None:
    copy_curvenote(config_dir)
    proc = subprocess.run([sys.executable, "-m", "federation_deploy.cli.main", "--config-dir",
                           str(config_dir), "validate"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    state, lock = problems(config_dir)
    assert "/terraform/aws/seabird/versions.tf:15: backend \"s3\": " in state, state
    assert "bucket 'mybinder-curvenote-terraform-state' at key 'curvenote/terraform.tfstate'" \
        in state
    assert "terraform/aws/curvenote/versions.tf:15, member curvenote)" in state
    assert "/terraform/aws/seabird/versions.tf:15: dynamodb_table: " in lock
    assert "'mybinder-curvenote-terraform-locks'" in lock
    assert "terraform/aws/curvenote/versions.tf:15, member curvenote)" in lock


def test_a_copy_with_its_own_key_but_the_same_lock_table_is_refused(
        config_dir: Path) -> None:
    versions = copy_curvenote(config_dir)
    versions.write_text(versions.read_text().replace(
        "curvenote/terraform.tfstate", "seabird/terraform.tfstate"))
    with (config_dir / "federation.yaml").open("a") as federation:
        federation.write(SEABIRD)
    (problem,) = problems(config_dir)
    assert "/terraform/aws/seabird/versions.tf:15: dynamodb_table: " in problem
    assert "terraform/aws/seabird (member seabird) locks its state in DynamoDB table " \
        "'mybinder-curvenote-terraform-locks'" in problem


def test_a_copy_with_its_own_backend_is_valid(config_dir: Path) -> None:
    versions = copy_curvenote(config_dir)
    versions.write_text(versions.read_text().replace("curvenote", "seabird"))
    with (config_dir / "federation.yaml").open("a") as federation:
        federation.write(SEABIRD)
    assert validate(config_dir).messages[-1].startswith("config valid: 6 members")


def test_two_members_on_one_stack_are_refused(config_dir: Path) -> None:
    with (config_dir / "federation.yaml").open("a") as federation:
        federation.write(SEABIRD.replace("aws/seabird", "aws/curvenote"))
    (problem,) = problems(config_dir)
    assert "members.seabird.terraform.stack: aws/curvenote is also the stack of member " \
           "curvenote" in problem
    assert problem.startswith(f"{config_dir / 'federation.yaml'}:")
