"""The curvenote stack with the real terraform and AWS provider against moto_server.

One bootstrap and one apply serve the whole module (each terraform command costs seconds);
tests that disturb the stack (lock file, state serial, drift) put it back before they end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from federation_deploy.actions import terraform as tf
from federation_deploy.cli.main import cli
from federation_deploy.commands import terraform as tf_commands
from federation_deploy.config import Federation, load_federation, terraform_files
from federation_deploy.errors import (
    FederationDeployError,
    LockFileError,
    ToolError,
    UsageError,
)
from federation_deploy.runner import Runner
from tests.conftest import copy_federation
from tests.helpers.iam import allows_web_identity, condition_values, eks_access_entries_gap
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
        # -lock-timeout: on a loaded machine the previous command's lock may still be going
        proc = subprocess.run([stack.executable(), command, "-lock-timeout=120s", address],
                              cwd=deployed.stack, env={**os.environ, **env},
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
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


# -- GitHub Actions' roles, cluster access, the autoscaler's role (issue 18) ------------------

REPOSITORY = "jupyterhub/mybinder.org-deploy"  # github_repository's default in the stack
ISSUER = "token.actions.githubusercontent.com"
ACCOUNT = "123456789012"  # moto's account
CLUSTER_ARN = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/binderhub"


def role_trust(moto: MotoServer, name: str) -> dict[str, Any]:
    document: dict[str, Any] = aws(moto, "iam").get_role(RoleName=name)["Role"][
        "AssumeRolePolicyDocument"]
    return document


def role_policy(moto: MotoServer, role: str) -> dict[str, Any]:
    """The one managed policy attached to a role, decoded."""
    iam = aws(moto, "iam")
    (attached,) = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
    document: dict[str, Any] = iam.get_policy_version(
        PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    return document


def statements(policy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in policy["Statement"]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("role, subjects", [
    ("binderhub-github-deploy", [f"repo:{REPOSITORY}:environment:production",
                                 f"repo:{REPOSITORY}:ref:refs/heads/main"]),
    ("binderhub-github-terraform-plan", [f"repo:{REPOSITORY}:pull_request",
                                         f"repo:{REPOSITORY}:ref:refs/heads/main"]),
    ("binderhub-github-terraform", [f"repo:{REPOSITORY}:environment:terraform-apply"]),
])
def test_github_roles_trust_exactly_this_repository(
    deployed: Deployed, moto: MotoServer, role: str, subjects: list[str]
) -> None:
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"
    read = aws(moto, "iam").get_open_id_connect_provider(OpenIDConnectProviderArn=provider)
    assert (read["Url"], read["ClientIDList"]) == (ISSUER, ["sts.amazonaws.com"])
    policy = role_trust(moto, role)
    assert sorted(condition_values(policy, "StringEquals", f"{ISSUER}:sub")) == subjects
    assert condition_values(policy, "StringEquals", f"{ISSUER}:aud") == ["sts.amazonaws.com"]
    assert condition_values(policy, "StringLike", f"{ISSUER}:sub") == []

    def admits(sub: str, aud: str = "sts.amazonaws.com") -> bool:
        return allows_web_identity(policy, provider, {f"{ISSUER}:sub": sub, f"{ISSUER}:aud": aud})

    every = [f"repo:{REPOSITORY}:{s}" for s in (
        "ref:refs/heads/main", "pull_request", "environment:production",
        "environment:terraform-apply", "ref:refs/heads/feature", "ref:refs/tags/v1",
        "environment:staging")]
    assert [s for s in every if admits(s)] == sorted(subjects, key=every.index)
    for sub in subjects:
        assert not admits(sub, aud="https://github.com/jupyterhub")
        # a fork's token, and another repository's with the same branch or environment
        assert not admits(sub.replace(REPOSITORY, "someone/mybinder.org-deploy"))
        assert not admits(sub.replace(REPOSITORY, "jupyterhub/other-repo"))
        assert not admits(sub.replace(REPOSITORY, REPOSITORY + "-fork"))


def test_deploy_role_may_only_describe_this_cluster(deployed: Deployed, moto: MotoServer) -> None:
    policy = role_policy(moto, "binderhub-github-deploy")
    assert [(s["Effect"], as_list(s["Action"]), as_list(s["Resource"]))
            for s in policy["Statement"]] == [("Allow", ["eks:DescribeCluster"], [CLUSTER_ARN])]


def test_terraform_roles_state_and_scope(deployed: Deployed, moto: MotoServer) -> None:
    bucket, table = f"arn:aws:s3:::{BUCKET}", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
    plan = statements(role_policy(moto, "binderhub-github-terraform-plan"))
    apply = statements(role_policy(moto, "binderhub-github-terraform"))
    for policy in (plan, apply):
        assert as_list(policy["StateBucket"]["Resource"]) == [bucket]
        assert as_list(policy["ReadState"]["Resource"]) == [f"{bucket}/*"]
        assert as_list(policy["StateLock"]["Resource"]) == [table]
    # plan reads and locks; only apply writes the state or changes anything
    plan_actions = {a for s in plan.values() for a in as_list(s["Action"])}
    writes = {a for a in plan_actions if not re.match(
        r"[a-z0-9]+:(Describe|Get|List)", a)}
    assert writes == {"dynamodb:PutItem", "dynamodb:DeleteItem"}  # the lock, nothing else
    assert as_list(apply["WriteState"]["Action"]) == ["s3:PutObject"]
    assert set(as_list(apply["ThisCluster"]["Resource"])) == {
        CLUSTER_ARN, f"arn:aws:eks:{REGION}:{ACCOUNT}:nodegroup/binderhub/*",
        f"arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/binderhub/*"}
    assert set(as_list(apply["RolesAndPoliciesOfThisCluster"]["Resource"])) == {
        f"arn:aws:iam::{ACCOUNT}:role/binderhub-*", f"arn:aws:iam::{ACCOUNT}:policy/binderhub-*"}
    attachable = apply["AttachOnlyThePoliciesTheStacksUse"]["Condition"]["ArnLike"][
        "iam:PolicyARN"]
    assert "arn:aws:iam::aws:policy/AdministratorAccess" not in attachable
    assert "iam:PutRolePolicy" not in {a for s in apply.values() for a in as_list(s["Action"])}


def test_autoscaler_role_is_limited_to_this_clusters_node_groups(
    deployed: Deployed, moto: MotoServer
) -> None:
    issuer = aws(moto, "eks").describe_cluster(name="binderhub")["cluster"]["identity"]["oidc"][
        "issuer"].removeprefix("https://")
    trust = role_trust(moto, "binderhub-cluster-autoscaler")
    assert condition_values(trust, "StringEquals", f"{issuer}:sub") == [
        "system:serviceaccount:kube-system:cluster-autoscaler"]
    policy = statements(role_policy(moto, "binderhub-cluster-autoscaler"))
    scale = policy["ScaleOnlyThisClustersNodeGroups"]
    assert sorted(as_list(scale["Action"])) == [
        "autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    assert scale["Condition"] == {"StringEquals": {
        "aws:ResourceTag/k8s.io/cluster-autoscaler/binderhub": "owned",
        "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true"}}
    assert as_list(policy["NodeGroupsOfThisCluster"]["Resource"]) == [
        f"arn:aws:eks:{REGION}:{ACCOUNT}:nodegroup/binderhub/*"]
    # the node group carries the tags the policy is scoped by
    tags = aws(moto, "eks").describe_nodegroup(
        clusterName="binderhub", nodegroupName="binderhub-nodes")["nodegroup"]["tags"]
    assert tags["k8s.io/cluster-autoscaler/binderhub"] == "owned"
    assert tags["k8s.io/cluster-autoscaler/enabled"] == "true"


def test_role_arns_are_outputs_and_the_autoscalers_reaches_render(deployed: Deployed) -> None:
    code, out, err = deployed.cli("terraform", "output", MEMBER, "--output", "json")
    assert code == 0, err
    outputs = {k: v["value"] for k, v in json.loads(out).items()}
    role = f"arn:aws:iam::{ACCOUNT}:role/binderhub-"
    assert outputs["deploy_role_arn"] == role + "github-deploy"
    assert outputs["terraform_plan_role_arn"] == role + "github-terraform-plan"
    assert outputs["terraform_role_arn"] == role + "github-terraform"
    assert outputs["cluster_autoscaler_role_arn"] == role + "cluster-autoscaler"
    saved = json.loads(deployed.fed.generated_outputs_file(MEMBER).read_text())
    assert saved["deploy_role_arn"]["value"] == outputs["deploy_role_arn"]  # what cd.yml reads
    code, out, err = deployed.cli("render", MEMBER, "--release", "cluster-autoscaler")
    assert code == 0, err
    values = YAML(typ="safe", pure=True).load(out)
    assert values["rbac"]["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": role + "cluster-autoscaler"}
    assert values["rbac"]["serviceAccount"]["name"] == "cluster-autoscaler"


def test_production_plans_the_deploy_roles_access_entry(deployed: Deployed) -> None:
    """The HCL moto cannot apply, planned as production has it (enable_access_entries at its
    default, true) against the applied state: the deploy role's access entry, its cluster-admin
    association and the cluster's authentication mode."""
    env = {**os.environ, **deployed.env, "TF_IN_AUTOMATION": "1"}
    env.pop("TF_VAR_enable_access_entries")
    stack = deployed.terraform()
    proc = subprocess.run(
        [stack.executable(), "plan", "-input=false", "-lock=false", "-refresh=false",
         "-no-color"], cwd=deployed.stack, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    plan = proc.stdout
    assert "module.binderhub_eks.aws_eks_access_entry.deploy[0] will be created" in plan
    assert "module.binderhub_eks.aws_eks_access_policy_association.deploy[0] will be created" \
        in plan
    assert 'policy_arn    = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"' \
        in plan
    assert 'authentication_mode                         = "API"' in plan
    assert f'principal_arn     = "arn:aws:iam::{ACCOUNT}:role/binderhub-github-deploy"' in plan


def test_access_entries_are_applied(deployed: Deployed, moto: MotoServer) -> None:
    """Against moto they are not: say exactly why (the same probe as test_github_access)."""
    gap = eks_access_entries_gap(moto.url)
    if gap is None:
        pytest.fail("moto implements EKS access entries now: drop TF_VAR_enable_access_entries "
                    "from sandbox.moto_environment and assert them here")
    state = json.loads(aws(moto, "s3").get_object(
        Bucket=BUCKET, Key="curvenote/terraform.tfstate")["Body"].read())
    assert "aws_eks_access_entry" not in {r["type"] for r in state["resources"]}
    pytest.skip("not applied against moto (TF_VAR_enable_access_entries=false): aws_eks_access_"
                "entry.deploy, aws_eks_access_policy_association.deploy and the cluster's "
                f"access_config (authentication_mode API), because moto_server: {gap}. "
                "Planned with the production default instead (test_production_plans_...)")
