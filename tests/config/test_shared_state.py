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
from tests.conftest import REPO
from tests.helpers.names import fresh_name, taken_names


def member(name: str, stack: str | None = None) -> str:
    return f"""
  {name}:
    url: https://binder.{name}.example.org
    cloud: aws
    weight: 0
    kubernetes_version: "1.29"
    cluster: {{region: eu-west-1, name: {name}}}
    terraform: {{stack: {stack or f"aws/{name}"}}}
"""


@pytest.fixture
def name(config_dir: Path) -> str:
    """A member and stack name neither the copy (with the repository's terraform/) nor the
    repository itself holds: a maintainer's new member never collides with this test's."""
    return fresh_name(taken_names(config_dir.parent, REPO))


def copy_curvenote(config_dir: Path, name: str) -> Path:
    """terraform/aws/<name>, copied from curvenote as the README's steps once said, in the
    test's copy of the tree (never in the repository's own)."""
    stacks = config_dir.parent / "terraform" / "aws"
    assert REPO not in stacks.parents, stacks
    shutil.copytree(stacks / "curvenote", stacks / name,
                    ignore=shutil.ignore_patterns(".terraform", ".fd-work"))
    return stacks / name / "versions.tf"


def problems(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate(config_dir)
    return [str(p) for p in caught.value.problems]


def test_a_copied_stack_sharing_the_state_is_refused_naming_both(
        config_dir: Path, name: str) -> None:
    copy_curvenote(config_dir, name)
    proc = subprocess.run([sys.executable, "-m", "federation_deploy.cli.main", "--config-dir",
                           str(config_dir), "validate"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    state, lock = problems(config_dir)
    assert f"/terraform/aws/{name}/versions.tf:17: backend \"s3\" key: " in state, state
    assert "bucket 'mybinder-curvenote-terraform-state' at key 'curvenote/terraform.tfstate'" \
        in state
    assert "terraform/aws/curvenote/versions.tf:17, member curvenote)" in state
    assert f"/terraform/aws/{name}/versions.tf:19: dynamodb_table: " in lock
    assert "'mybinder-curvenote-terraform-locks'" in lock
    assert "terraform/aws/curvenote/versions.tf:19, member curvenote)" in lock


def test_a_copy_with_its_own_key_but_the_same_lock_table_is_refused(
        config_dir: Path, name: str) -> None:
    versions = copy_curvenote(config_dir, name)
    versions.write_text(versions.read_text().replace(
        "curvenote/terraform.tfstate", f"{name}/terraform.tfstate"))
    with (config_dir / "federation.yaml").open("a") as federation:
        federation.write(member(name))
    problem, *passed = problems(config_dir)
    assert f"/terraform/aws/{name}/versions.tf:19: dynamodb_table: " in problem
    assert f"terraform/aws/{name} (member {name}) locks its state in DynamoDB table " \
        "'mybinder-curvenote-terraform-locks'" in problem


def test_a_copy_with_its_own_backend_is_valid(config_dir: Path, name: str) -> None:
    stack = copy_curvenote(config_dir, name).parent
    for tf in stack.glob("*.tf"):
        tf.write_text(tf.read_text().replace("curvenote", name))
    with (config_dir / "federation.yaml").open("a") as federation:
        federation.write(member(name))
    assert validate(config_dir).messages[-1].startswith("config valid: 6 members")


def test_two_members_on_one_stack_are_refused(config_dir: Path, name: str) -> None:
    with (config_dir / "federation.yaml").open("a") as federation:
        federation.write(member(name, "aws/curvenote"))
    (problem,) = problems(config_dir)
    assert f"members.{name}.terraform.stack: aws/curvenote is also the stack of member " \
           "curvenote" in problem
    assert problem.startswith(f"{config_dir / 'federation.yaml'}:")


def test_a_copy_whose_main_tf_still_passes_the_originals_lock_table_is_refused(
        config_dir: Path, name: str) -> None:
    """versions.tf's backend fixed, main.tf not: the GitHub role would be given curvenote's
    lock table and state bucket. Both arguments are named, with their file and line."""
    versions = copy_curvenote(config_dir, name)
    versions.write_text(versions.read_text().replace("curvenote", name))
    with (config_dir / "federation.yaml").open("a") as federation:
        federation.write(member(name))
    bucket, lock = problems(config_dir)
    main = f"/terraform/aws/{name}/main.tf"
    assert f"{main}:40: terraform_state_bucket: " in bucket, bucket
    assert f"terraform/aws/{name} passes 'mybinder-curvenote-terraform-state', which is " \
        in bucket
    assert "terraform/aws/curvenote's (" in bucket
    assert "terraform/aws/curvenote/versions.tf:16, member curvenote)" in bucket
    assert f"names 'mybinder-{name}-terraform-state'" in bucket
    assert f"{main}:41: terraform_lock_table: " in lock, lock
    assert "'mybinder-curvenote-terraform-locks', which is " in lock
    assert "terraform/aws/curvenote/versions.tf:19, member curvenote)" in lock
    assert f"terraform/aws/{name}/versions.tf:19) names 'mybinder-{name}-terraform-locks'" \
        in lock


def test_a_module_argument_naming_a_table_that_is_no_stacks_is_refused_too(
        config_dir: Path) -> None:
    """Not another stack's, but not this stack's own either: a typo is caught the same way."""
    main = config_dir.parent / "terraform" / "aws" / "curvenote" / "main.tf"
    main.write_text(main.read_text().replace('"mybinder-curvenote-terraform-locks"',
                                             '"mybinder-curvenote-terraform-lock"'))
    (problem,) = problems(config_dir)
    assert "/terraform/aws/curvenote/main.tf:41: terraform_lock_table: " in problem
    assert "names 'mybinder-curvenote-terraform-locks'" in problem
