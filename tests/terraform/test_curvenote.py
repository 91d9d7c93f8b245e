"""The curvenote stack with the real terraform and AWS provider against moto_server.

One bootstrap and one apply serve the whole module (each terraform command costs seconds);
tests that disturb the stack (lock file, state serial, drift) put it back before they end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from federation_deploy import terraform_files
from federation_deploy.actions import terraform as tf
from federation_deploy.cli.main import cli
from federation_deploy.commands import terraform as tf_commands
from federation_deploy.config import Federation, load_federation
from federation_deploy.errors import (
    FederationDeployError,
    LockFileError,
    ToolError,
    UsageError,
)
from federation_deploy.runner import Runner
from tests.conftest import copy_federation
from tests.helpers.moto import MotoServer

pytestmark = pytest.mark.terraform

MEMBER = "curvenote"
BUCKET = "mybinder-curvenote-terraform-state"
TABLE = "mybinder-curvenote-terraform-locks"
REGION = "us-east-2"


@dataclass
class Deployed:
    config: Path
    fed: Federation
    env: dict[str, str]
    stack: Path
    bootstrap: tf.BootstrapResult
    plan: tf.PlanResult
    applies: list[Any]  # an ApplyResult or the error, per concurrent apply

    def terraform(self) -> tf.PinnedTerraform:
        return tf_commands.for_member(self.fed, MEMBER, Runner(echo=False), env=self.env)

    def cli(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, ["--config-dir", str(self.config), *args], env=self.env)
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, tf_env: dict[str, str]) -> Deployed:
    """Bootstrap, plan, then two applies of that plan started together."""
    config = copy_federation(tmp_path_factory.mktemp("curvenote"), with_generated=False)
    fed = load_federation(config)
    runner = Runner(echo=False)
    bootstrap = tf_commands.bootstrap_member(fed, MEMBER, runner, env=tf_env)
    plan = tf_commands.for_member(fed, MEMBER, runner, env=tf_env).plan()
    applies: list[Any] = [None, None]
    start = threading.Barrier(2)

    def apply(i: int) -> None:
        start.wait()
        try:
            applies[i] = tf_commands.apply_member(fed, MEMBER, Runner(echo=False), env=tf_env)
        except FederationDeployError as exc:
            applies[i] = exc

    threads = [threading.Thread(target=apply, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    stack = fed.member(MEMBER).terraform
    assert stack is not None
    return Deployed(config, fed, tf_env, stack.directory, bootstrap, plan, applies)


def aws(moto: MotoServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


# -- bootstrap ------------------------------------------------------------------------------


def test_bootstrap_creates_the_bucket_and_table_the_backend_names(
    deployed: Deployed, moto: MotoServer
) -> None:
    assert deployed.bootstrap.changes
    assert (deployed.bootstrap.backend.bucket, deployed.bootstrap.backend.dynamodb_table) == (
        BUCKET, TABLE)
    s3 = aws(moto, "s3")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    table = aws(moto, "dynamodb").describe_table(TableName=TABLE)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]


def test_bootstrap_again_changes_nothing(deployed: Deployed) -> None:
    again = tf_commands.bootstrap_member(deployed.fed, MEMBER, Runner(echo=False), env=deployed.env)
    assert not again.changes and again.imported == ()


def test_bootstrap_without_local_state_adopts_what_exists(deployed: Deployed) -> None:
    """Another machine (no bootstrap state): the bucket and table are imported, not re-made."""
    state = (deployed.fed.terraform_root / terraform_files.BOOTSTRAP_STACK
             / terraform_files.WORK_DIR / MEMBER)
    shutil.rmtree(state)
    adopted = tf_commands.bootstrap_member(deployed.fed, MEMBER, Runner(echo=False),
                                           env=deployed.env)
    assert set(adopted.imported) == {"aws_s3_bucket.state", "aws_dynamodb_table.lock"}


# -- plan, concurrent applies, outputs --------------------------------------------------------


def test_plan_was_saved_with_its_summary(deployed: Deployed) -> None:
    assert deployed.plan.summary.changes
    assert deployed.plan.summary.counts["add"] >= 30
    assert "module.binderhub_eks.aws_eks_cluster.this will be created" in deployed.plan.text
    assert "Refreshing state" not in deployed.plan.text


def test_concurrent_applies_one_fails_on_the_dynamodb_lock(deployed: Deployed) -> None:
    results = [r for r in deployed.applies if isinstance(r, tf.ApplyResult)]
    errors = [r for r in deployed.applies if isinstance(r, FederationDeployError)]
    assert len(results) == 1 and len(errors) == 1, deployed.applies
    message = errors[0].render()
    assert isinstance(errors[0], ToolError) and errors[0].returncode == 1
    assert "is locked by another terraform run" in message
    assert "nothing was applied and the state is unchanged" in message
    assert "Error acquiring the state lock" in message  # terraform's own reason, indented
    assert "force-unlock" in message
    assert results[0].summary.counts["add"] >= 30


def test_a_stale_state_lock_on_plan_and_check_names_force_unlock(deployed: Deployed,
                                                                 moto: MotoServer) -> None:
    # what a killed apply leaves in the lock table: terraform's own lock item
    lock_id = "0b9e2a1c-1111-2222-3333-444455556666"
    info = {"ID": lock_id, "Operation": "OperationTypeApply", "Who": "ci@runner",
            "Version": "1.11.4", "Created": "2026-01-01T00:00:00Z", "Info": "",
            "Path": f"{BUCKET}/curvenote/terraform.tfstate"}
    table = aws(moto, "dynamodb")
    key = {"LockID": {"S": f"{BUCKET}/curvenote/terraform.tfstate"}}
    table.put_item(TableName=TABLE, Item={**key, "Info": {"S": json.dumps(info)}})
    try:
        for command in ("plan", "check"):
            code, out, err = deployed.cli("terraform", command, MEMBER)
            assert code == 1, err
            assert "the state of curvenote (aws/curvenote) is locked by another terraform run" \
                in err
            assert "who ci@runner" in err
            assert f"force-unlock {lock_id}`" in err and "terraform -chdir=" in err
            assert "Traceback" not in err
    finally:
        table.delete_item(TableName=TABLE, Key=key)
    code, _, err = deployed.cli("terraform", "check", MEMBER)
    assert code == 0, err


def test_state_is_intact_and_a_second_plan_has_no_changes(
    deployed: Deployed, moto: MotoServer
) -> None:
    state = json.loads(aws(moto, "s3").get_object(
        Bucket=BUCKET, Key="curvenote/terraform.tfstate")["Body"].read())
    assert {r["type"] for r in state["resources"]} >= {"aws_eks_cluster", "aws_eks_node_group"}
    items = aws(moto, "dynamodb").scan(TableName=TABLE)["Items"]
    assert [i["LockID"]["S"] for i in items] == [f"{BUCKET}/curvenote/terraform.tfstate-md5"]
    second = deployed.terraform().plan()
    assert not second.summary.changes, second.text
    assert second.summary.line.startswith("No changes")


def test_outputs_are_saved_and_reach_render(deployed: Deployed) -> None:
    saved = json.loads(deployed.fed.generated_outputs_file(MEMBER).read_text())
    assert saved["cluster_name"] == {"sensitive": False, "type": "string", "value": "binderhub"}
    assert saved["region"]["value"] == REGION
    registry = "123456789012.dkr.ecr.us-east-2.amazonaws.com"
    assert saved["registry_url"]["value"] == registry
    assert saved["image_prefix"]["value"] == f"{registry}/binderhub/"
    assert saved["cluster_endpoint"]["value"].startswith("https://")
    code, out, err = deployed.cli("render", MEMBER)
    assert code == 0, err
    assert f"image_prefix: {registry}/binderhub/" in out
    assert f"url: {registry}" in out
    assert "arn:aws:iam::123456789012:role/binderhub-registry-helper" in out


def test_output_command_text_and_json(deployed: Deployed) -> None:
    code, out, err = deployed.cli("terraform", "output", MEMBER, "--output", "json")
    assert code == 0, err
    assert json.loads(out)["cluster_name"]["value"] == "binderhub"
    code, out, _ = deployed.cli("-q", "terraform", "output", MEMBER)
    assert code == 0 and "cluster_name = binderhub\n" in out


# -- apply refuses what it must --------------------------------------------------------------


def test_apply_refuses_without_a_saved_plan(deployed: Deployed) -> None:
    stack = deployed.terraform()
    for name in (tf.PLAN_FILE, tf.PLAN_META):
        (stack.work_dir / name).unlink(missing_ok=True)
    with pytest.raises(UsageError, match="no saved plan for curvenote"):
        stack.apply()
    code, _, err = deployed.cli("terraform", "apply", "--yes", MEMBER)
    assert code == 2 and "federation-deploy terraform plan curvenote" in err


def test_apply_refuses_a_plan_when_the_state_changed_since(deployed: Deployed) -> None:
    stack = deployed.terraform()
    stack.plan()
    # Another run writes the state (taint + untaint: two new serials, same resources).
    address = 'module.binderhub_eks.aws_ecr_repository.binderhub["binderhub-builder"]'
    env = {**deployed.env, "TF_IN_AUTOMATION": "1"}
    for command in ("taint", "untaint"):
        subprocess.run([stack.executable(), command, address], cwd=deployed.stack,
                       env={**os.environ, **env}, check=True, capture_output=True)
    with pytest.raises(ToolError, match="saved plan of curvenote .* is stale") as caught:
        stack.apply()
    assert "Saved plan is stale" in caught.value.render()
    assert not stack.plan_file.exists()  # a stale plan can never apply: it is dropped


def test_apply_refuses_a_plan_when_the_stack_changed_since(deployed: Deployed) -> None:
    stack = deployed.terraform()
    stack._write_meta(tf.PLAN_META, {"fingerprint": "made-from-other-files", "summary": "x"})
    stack.plan_file.write_bytes(b"not applied")
    with pytest.raises(UsageError, match="stale: the stack's files, its lock file or its "):
        stack.apply()
    assert not stack.plan_file.exists()


def test_apply_asks_for_confirmation_outside_ci(deployed: Deployed) -> None:
    stack = deployed.terraform()
    stack._write_meta(tf.PLAN_META, {"fingerprint": stack.fingerprint(), "summary": "Plan: 1"})
    stack.plan_file.write_bytes(b"never applied")
    env = {**deployed.env, "CI": ""}
    result = CliRunner().invoke(cli, ["--config-dir", str(deployed.config), "terraform",
                                      "apply", MEMBER], env=env, input="n\n")
    assert result.exit_code == 2
    assert "needs confirmation: pass --yes" in result.stderr
    assert stack.plan_file.exists()  # nothing ran


# -- drift ----------------------------------------------------------------------------------


def test_check_reports_drift_with_exit_3(deployed: Deployed, moto: MotoServer) -> None:
    ecr = aws(moto, "ecr")
    arn = ecr.describe_repositories(repositoryNames=["binderhub/binderhub-builder"])[
        "repositories"][0]["repositoryArn"]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "changed-by", "Value": "hand"}])
    try:
        code, out, err = deployed.cli("terraform", "check", MEMBER)
        assert code == 3, err
        assert "drift in curvenote" in err
        assert "changed-by" in out
    finally:
        ecr.untag_resource(resourceArn=arn, tagKeys=["changed-by"])


# -- the lock file ----------------------------------------------------------------------------


@pytest.mark.parametrize("old, new, why", [
    ("h1:", "h1:AAAA", "doesn't match any of the"),
    ('version     = "5.100.0"', 'version     = "5.99.0"', "does not match configured version"),
])
def test_a_tampered_lock_file_is_refused_and_left_untouched(
    deployed: Deployed, old: str, new: str, why: str
) -> None:
    lock = deployed.stack / tf.LOCK_FILE
    good = lock.read_text()
    tampered = good.replace(old, new, 1)
    assert tampered != good
    lock.write_text(tampered)
    try:
        with pytest.raises(ToolError) as caught:
            deployed.terraform().init()
        message = caught.value.render()
        assert "terraform init refused the lock file of curvenote" in message
        assert why in " ".join(message.split())
        assert "federation-deploy terraform lock curvenote" in message
        assert lock.read_text() == tampered
        with pytest.raises(ToolError, match="refused the lock file"):
            deployed.terraform().plan()  # plan inits again: the lock file changed
        assert lock.read_text() == tampered
    finally:
        lock.write_text(good)


def test_a_missing_lock_file_is_refused(deployed: Deployed) -> None:
    lock = deployed.stack / tf.LOCK_FILE
    good = lock.read_text()
    lock.unlink()
    try:
        for action in ("init", "plan", "check"):
            with pytest.raises(LockFileError, match="has no .terraform.lock.hcl"):
                getattr(deployed.terraform(), action)()
        code, _, err = deployed.cli("terraform", "init", MEMBER)
        assert code == 1 and "federation-deploy terraform lock curvenote" in err
        assert not lock.exists()
    finally:
        lock.write_text(good)
