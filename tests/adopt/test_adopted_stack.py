"""The terraform stack of an adopted repository (the 2024 layout's terraform/aws/curvenote, which
pins a range) planned through federation-deploy with the real terraform against moto_server."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from tests.adopt.layouts import LAYOUTS, build
from tests.helpers.moto import MotoServer

pytestmark = pytest.mark.terraform

BUCKET, TABLE, REGION = "layout-curvenote-tfstate", "layout-curvenote-tflock", "us-east-2"


def test_the_adopted_aws_stack_plans_with_its_lock_file(
        tmp_path: Path, moto: MotoServer, tf_env: dict[str, str]) -> None:
    repo = build(LAYOUTS["2024"], tmp_path / "deploy")
    lock = (repo / "terraform" / "aws" / "curvenote" / ".terraform.lock.hcl").read_text()
    result = CliRunner().invoke(cli, ["adopt", str(repo)])
    assert result.exit_code == 0, result.output
    # the state bucket and lock table exist already (created outside this repository)
    client = {"endpoint_url": moto.url, "region_name": REGION,
              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("s3", **client).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    boto3.client("dynamodb", **client).create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}])
    result = CliRunner().invoke(cli, ["--config-dir", str(repo), "terraform", "plan",
                                      "curvenote"], env=tf_env)
    assert result.exit_code in (0, 3), result.output
    assert "aws_ecr_repository.binder will be created" in result.output
    assert 'name                 = "binderhub/curvenote"' in result.output
    # the committed lock file is the one terraform used, unchanged
    assert (repo / "terraform" / "aws" / "curvenote" / ".terraform.lock.hcl").read_text() == lock
