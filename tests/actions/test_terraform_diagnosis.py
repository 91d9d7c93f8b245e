"""Terraform failures are diagnosed from terraform's own error text, with the real binary:
registry unreachable, no credentials, a wrong lock file, resources left by a killed apply
(moto_server), and terraform's normal lock-file chatter never read as a lock problem."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import boto3
import pytest

from federation_deploy.actions import terraform as tf
from federation_deploy.actions.terraform_diagnosis import diagnose, error_text
from federation_deploy.config import display_path
from federation_deploy.errors import ProviderUnavailableError, ToolError
from federation_deploy.runner import Runner
from tests.conftest import REPO
from tests.helpers.moto import MotoServer
from tests.helpers.terraform_fixtures import pinned_version

pytestmark = pytest.mark.terraform

CURVENOTE = REPO / "terraform" / "aws" / "curvenote"
# Every connection through a proxy that refuses at once: the registry is unreachable whether
# or not this machine is online (deterministic, and nothing leaves 127.0.0.1).
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
              "NO_PROXY": ""}
NO_AWS = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
          "AWS_EC2_METADATA_DISABLED": "true"}


def make_stack(tmp_path: Path, body: str, backend: str = "") -> Path:
    """A one-file stack pinning the same aws provider as curvenote, with its lock file."""
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "versions.tf").write_text(
        "terraform {\n"
        f'  required_version = "{pinned_version()}"\n'
        '  required_providers {\n    aws = {\n      source  = "hashicorp/aws"\n'
        '      version = "5.100.0"\n    }\n  }\n'
        f"{backend}}}\n")
    (stack / "main.tf").write_text(body)
    shutil.copy(CURVENOTE / tf.LOCK_FILE, stack / tf.LOCK_FILE)
    return stack


def pinned(stack: Path, env: dict[str, str]) -> tf.PinnedTerraform:
    return tf.PinnedTerraform(stack, pinned_version(), Runner(echo=False), name="test-stack",
                              member="test", env=env)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_") or name in ("TF_PLUGIN_MIRROR", "TF_CLI_CONFIG_FILE"):
            monkeypatch.delenv(name)


PROVIDER = 'provider "aws" {\n  region = "us-east-2"\n}\n'


def test_registry_unreachable_gets_the_mirror_hint(tmp_path: Path, terraform_binary: str,
                                                   clean_env: None) -> None:
    stack = make_stack(tmp_path, PROVIDER)
    with pytest.raises(ToolError) as caught:
        pinned(stack, {**NO_NETWORK, **NO_AWS}).init()
    message = caught.value.render()
    assert "could not get the providers of test-stack" in message
    assert "set TF_PLUGIN_MIRROR=DIR" in message
    assert "lock file" not in message.split("hint:", 1)[1]  # not the old lock-file diagnosis
    assert "could not connect to registry.terraform.io" in " ".join(message.split())


def test_a_mirror_without_the_provider_says_check_the_mirror(
        tmp_path: Path, terraform_binary: str, clean_env: None) -> None:
    stack = make_stack(tmp_path, PROVIDER)
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    # refused before terraform runs: the lock file names a provider the mirror lacks
    with pytest.raises(ProviderUnavailableError) as caught:
        pinned(stack, {**NO_NETWORK, **NO_AWS, tf.MIRROR_ENV: str(empty)}).init()
    message = caught.value.render()
    assert f"hashicorp/aws 5.100.0 (pinned by {display_path(stack)}" in message
    assert f"is not in TF_PLUGIN_MIRROR={empty}" in message


def test_missing_credentials_get_the_credentials_hint(
        tmp_path: Path, terraform_binary: str, plugin_mirror: str, clean_env: None) -> None:
    backend = ('  backend "s3" {\n    bucket = "b"\n    key = "k"\n'
               '    region = "us-east-2"\n  }\n')
    stack = make_stack(tmp_path, PROVIDER, backend)
    with pytest.raises(ToolError) as caught:
        pinned(stack, {**NO_NETWORK, **NO_AWS, tf.MIRROR_ENV: plugin_mirror}).init()
    message = caught.value.render()
    assert "found no valid cloud credentials" in message
    assert "No valid credential sources found" in message  # terraform's own words, indented
    assert "TF_PLUGIN_MIRROR" not in message and "lock file" not in message


def test_a_lock_file_for_another_version_gets_the_lock_hint(
        tmp_path: Path, terraform_binary: str, plugin_mirror: str, clean_env: None) -> None:
    stack = make_stack(tmp_path, PROVIDER)
    lock = stack / tf.LOCK_FILE
    lock.write_text(lock.read_text().replace('version     = "5.100.0"', 'version     = "5.99.0"'))
    tampered = lock.read_text()
    with pytest.raises(ToolError) as caught:
        pinned(stack, {**NO_AWS, tf.MIRROR_ENV: plugin_mirror}).init()
    message = caught.value.render()
    assert "terraform init refused the lock file of test-stack" in message
    assert "`federation-deploy terraform lock test`" in message
    assert lock.read_text() == tampered


def test_a_successful_init_mentions_the_lock_file_and_is_fine(
        tmp_path: Path, terraform_binary: str, plugin_mirror: str, clean_env: None) -> None:
    stack = make_stack(tmp_path, PROVIDER)
    out = pinned(stack, {**NO_AWS, tf.MIRROR_ENV: plugin_mirror}).init()
    # the line the old pattern took for a lock problem; no Error: section, so no diagnosis
    assert "from the dependency lock file" in out
    assert diagnose(out, stack="s", chdir="s", lock_command="l", mirror=None,
                    action="init") is None


def test_resources_left_by_a_killed_apply_get_the_import_hint(
        tmp_path: Path, terraform_binary: str, plugin_mirror: str, moto_server: MotoServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the role exists in the cloud but not in this stack's state: what a killed apply leaves
    iam = boto3.client("iam", endpoint_url=moto_server.url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    policy = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
              '"Principal":{"Service":"ec2.amazonaws.com"}}]}')
    iam.create_role(RoleName="diagnosis-left-behind", AssumeRolePolicyDocument=policy)
    body = PROVIDER + """
resource "aws_iam_role" "left" {
  name = "diagnosis-left-behind"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole",
                   Principal = { Service = "ec2.amazonaws.com" } }]
  })
}
"""
    stack = make_stack(tmp_path, body)
    env = {**moto_server.environment, tf.MIRROR_ENV: plugin_mirror}
    terraform = pinned(stack, env)
    terraform.init()
    with pytest.raises(ToolError) as caught:
        terraform.apply_local(state=tmp_path / "terraform.tfstate")
    message = caught.value.render()
    assert "EntityAlreadyExists" in message  # terraform's own reason, kept
    assert "met resources that exist but are not in its state (aws_iam_role.left)" in message
    assert f"`terraform -chdir={display_path(stack)} import aws_iam_role.left ID`" in message


BACKEND = ('  backend "s3" {{\n    bucket = "{bucket}"\n    key = "diag/terraform.tfstate"\n'
           '    region = "us-east-2"\n    dynamodb_table = "{table}"\n  }}\n')


def state_bucket(moto_server: MotoServer, name: str) -> None:
    boto3.client("s3", endpoint_url=moto_server.url, region_name="us-east-2",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-east-2"})


def test_a_missing_lock_table_says_so_and_how_to_bootstrap(
        tmp_path: Path, terraform_binary: str, plugin_mirror: str,
        moto_server: MotoServer) -> None:
    """Issue 29: the bucket exists, the DynamoDB table does not; terraform says "Error
    acquiring the state lock", which was read as another run holding it, with force-unlock
    advice. No run holds anything: the bootstrap creates the table."""
    state_bucket(moto_server, "diag-state-no-table")
    stack = make_stack(tmp_path, PROVIDER,
                       BACKEND.format(bucket="diag-state-no-table", table="diag-no-such-table"))
    terraform = pinned(stack, {**moto_server.environment, tf.MIRROR_ENV: plugin_mirror})
    terraform.init()
    with pytest.raises(ToolError) as caught:
        terraform.plan()
    message = caught.value.render()
    assert "Error acquiring the state lock" in message  # terraform's own words, kept
    assert "ResourceNotFoundException" in message
    assert ("the DynamoDB lock table 'diag-no-such-table' of test-stack does not exist"
            in message)
    assert "`federation-deploy terraform bootstrap test`" in message
    assert "locked by another terraform run" not in message
    assert "force-unlock" not in message.replace("Do not force-unlock", "")


def test_a_missing_state_bucket_says_so_and_how_to_bootstrap(
        tmp_path: Path, terraform_binary: str, plugin_mirror: str,
        moto_server: MotoServer) -> None:
    stack = make_stack(tmp_path, PROVIDER,
                       BACKEND.format(bucket="diag-no-such-bucket", table="diag-lock"))
    terraform = pinned(stack, {**moto_server.environment, tf.MIRROR_ENV: plugin_mirror})
    with pytest.raises(ToolError) as caught:
        terraform.init()
    message = caught.value.render()
    assert "S3 state bucket 'diag-no-such-bucket' of test-stack does not exist" in message
    assert "`federation-deploy terraform bootstrap test`" in message


# -- the classifier on terraform's exact texts (lines as terraform prints them) ---------------

STATE_LOCKED = """\
╷
│ Error: Error acquiring the state lock
│
│ Error message: operation error DynamoDB: PutItem, https response error StatusCode: 400,
│ ConditionalCheckFailedException: The conditional request failed
│ Lock Info:
│   ID:        0b9e2a1c-1111-2222-3333-444455556666
│   Path:      mybinder-curvenote-terraform-state/curvenote/terraform.tfstate
│   Operation: OperationTypeApply
│   Who:       ci@runner
│   Version:   1.11.4
│   Created:   2026-01-01 00:00:00 +0000 UTC
│   Info:
│
│ Terraform acquires a state lock to protect the state from being written
│ by multiple users at the same time.
╵
"""


def test_state_lock_on_plan_names_the_force_unlock_command() -> None:
    found = diagnose(STATE_LOCKED, stack="curvenote", chdir="terraform/aws/curvenote",
                     lock_command="`l`", mirror=None, action="plan")
    assert found is not None and found.cause == "state-lock"
    assert "who ci@runner" in found.summary
    assert "operation OperationTypeApply" in found.summary
    assert ("`terraform -chdir=terraform/aws/curvenote force-unlock "
            "0b9e2a1c-1111-2222-3333-444455556666`") in found.hint
    assert "then plan again" in found.hint


def test_error_text_starts_at_the_first_error() -> None:
    text = ("Initializing provider plugins...\n- Reusing previous version of hashicorp/aws "
            "from the dependency lock file\n" + STATE_LOCKED)
    assert error_text(text).startswith("Error: Error acquiring the state lock")
    assert "Reusing" not in error_text(text)


LOCK_TABLE_DENIED = """\
Error: Error acquiring the state lock

Error message: operation error DynamoDB: PutItem, https response error
StatusCode: 400, RequestID: X, api error AccessDeniedException: User:
arn:aws:iam::123456789012:user/ci is not authorized to perform: dynamodb:PutItem
on resource: arn:aws:dynamodb:us-east-2:123456789012:table/mybinder-tflock
"""


def test_a_lock_table_that_may_not_be_used_is_not_a_held_lock() -> None:
    found = diagnose(LOCK_TABLE_DENIED, stack="curvenote", chdir="c", lock_command="`l`",
                     mirror=None, action="apply")
    assert found is not None and found.cause == "state-lock-failed"
    assert "these credentials may not use its DynamoDB lock table" in found.summary
    assert "dynamodb:GetItem, PutItem and DeleteItem" in found.hint
    assert "Do not force-unlock" in found.hint


def test_a_held_lock_is_still_a_held_lock() -> None:
    # the one case where force-unlock is the (last-resort) advice
    found = diagnose(STATE_LOCKED, stack="curvenote", chdir="c", lock_command="`l`",
                     mirror=None, action="apply")
    assert found is not None and found.cause == "state-lock"
    assert "locked by another terraform run" in found.summary
