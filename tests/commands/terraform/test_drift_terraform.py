"""`drift`'s terraform part with the real terraform and AWS provider against moto_server: a
small stack applied, then changed behind terraform's back (boto3 straight to moto)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from federation_deploy.actions import terraform as tf
from federation_deploy.cli.main import cli
from federation_deploy.commands import terraform as tf_commands
from federation_deploy.config import load_federation
from federation_deploy.runner import Runner
from tests.conftest import REPO, copy_federation
from tests.helpers.moto import MotoServer
from tests.helpers.terraform_fixtures import pinned_version

pytestmark = pytest.mark.terraform

MEMBER = "curvenote"
REGION = "us-east-2"
REPOSITORY = "drift-test/builder"

STACK = """\
provider "aws" {
  region = var.region
}

variable "region" {
  type = string
}

resource "aws_ecr_repository" "builder" {
  name = "REPOSITORY"
  tags = {
    "managed-by" = "federation-deploy"
  }
}
""".replace("REPOSITORY", REPOSITORY)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, tf_env: dict[str, str]) -> Path:
    """The fixture federation with curvenote's stack replaced by one ECR repository (local
    state), applied against moto once for the module (tests leave it as they found it)."""
    tmp_path = tmp_path_factory.mktemp("drift")
    config = copy_federation(tmp_path, with_generated=False)
    stack = tmp_path / "terraform" / "aws" / "drift"
    stack.mkdir()
    (stack / "versions.tf").write_text(
        f'terraform {{\n  required_version = "{pinned_version()}"\n  required_providers {{\n'
        '    aws = {\n      source  = "hashicorp/aws"\n      version = "5.100.0"\n    }\n'
        "  }\n}\n")
    (stack / "main.tf").write_text(STACK)
    shutil.copy(REPO / "terraform" / "aws" / "curvenote" / tf.LOCK_FILE, stack / tf.LOCK_FILE)
    federation = config / "federation.yaml"
    federation.write_text(federation.read_text().replace("stack: aws/curvenote",
                                                         "stack: aws/drift"))
    fed = load_federation(config)
    runner = Runner(echo=False)
    tf_commands.for_member(fed, MEMBER, runner, env=tf_env).plan()
    tf_commands.apply_member(fed, MEMBER, runner, env=tf_env)
    return config


def drift(config: Path, env: dict[str, str], *options: str
          ) -> tuple[int, dict[str, object], str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config), *options, "drift", MEMBER,
                                      "--part", "terraform", "-o", "json"], env=env)
    part = json.loads(result.stdout)["members"][0]["parts"]["terraform"]
    return result.exit_code, part, result.stderr


def test_a_change_behind_terraforms_back_is_drift_and_undoing_it_is_clean(
        config: Path, tf_env: dict[str, str], moto: MotoServer) -> None:
    code, part, err = drift(config, tf_env)
    assert code == 0, err
    assert part["status"] == "clean"

    ecr = boto3.client("ecr", endpoint_url=moto.url, region_name=REGION,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    arn = ecr.describe_repositories(repositoryNames=[REPOSITORY])["repositories"][0][
        "repositoryArn"]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "changed-by", "Value": "hand"}])
    code, part, err = drift(config, tf_env)
    assert code == 3, err
    assert part["status"] == "drift"
    assert part["findings"] == ["aws_ecr_repository.builder will be updated in-place"]
    assert part["detail"] == "Plan: 0 to add, 1 to change, 0 to destroy."
    # the plan's attribute values stay off stderr unless -v
    assert '"changed-by"' not in err and "terraform plan" in err
    code, _, err = drift(config, tf_env, "-v")
    assert code == 3 and '"changed-by" = "hand"' in err

    ecr.untag_resource(resourceArn=arn, tagKeys=["changed-by"])
    code, part, err = drift(config, tf_env)
    assert code == 0 and part["status"] == "clean", err


def test_terraform_that_cannot_run_is_not_checked(config: Path, tf_env: dict[str, str]) -> None:
    # no terraform on PATH: the part says why instead of "clean"
    code, part, err = drift(config, {**tf_env, "PATH": str(config / "no-bin")})
    assert code == 1, err
    assert part["status"] == "not checked"
    assert "terraform" in str(part["detail"]) and "not found" in str(part["detail"])
