"""The trust-policy evaluator of the GitHub roles' tests, and what moto lacks of EKS access entries.

The roles themselves are applied and read back in test_curvenote.py (one apply serves both).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from ruamel.yaml import YAML

from federation_deploy.sandbox.processes import moto_environment
from tests.conftest import REPO
from tests.helpers.iam import (
    allows_web_identity,
    condition_holds,
    condition_values,
    eks_access_entries_gap,
)
from tests.helpers.moto import MotoServer

ISSUER = "token.actions.githubusercontent.com"
PROVIDER = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"


def trust(operator: str, subjects: list[str], effect: str = "Allow") -> dict[str, Any]:
    condition: dict[str, dict[str, Any]] = {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}}
    condition.setdefault(operator, {})[f"{ISSUER}:sub"] = subjects
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": effect, "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": PROVIDER}, "Condition": condition}]}


def claims(sub: str, aud: str = "sts.amazonaws.com") -> dict[str, str]:
    return {f"{ISSUER}:sub": sub, f"{ISSUER}:aud": aud}


MAIN = "repo:jupyterhub/mybinder.org-deploy:ref:refs/heads/main"


def test_string_equals_admits_only_the_listed_subjects() -> None:
    policy = trust("StringEquals", [MAIN])
    assert allows_web_identity(policy, PROVIDER, claims(MAIN))
    for sub in ("repo:a-fork/mybinder.org-deploy:ref:refs/heads/main",
                "repo:jupyterhub/mybinder.org-deploy:ref:refs/heads/main-x",
                "repo:jupyterhub/mybinder.org-deploy:pull_request",
                "REPO:jupyterhub/mybinder.org-deploy:ref:refs/heads/main"):
        assert not allows_web_identity(policy, PROVIDER, claims(sub)), sub
    assert not allows_web_identity(policy, PROVIDER, claims(MAIN, aud="https://github.com/x"))
    assert not allows_web_identity(policy, PROVIDER, {f"{ISSUER}:sub": MAIN})  # no aud
    assert not allows_web_identity(policy, "arn:aws:iam::1:oidc-provider/other", claims(MAIN))


def test_string_like_wildcards_are_evaluated_as_iam_does() -> None:
    # the mistake the exact subjects avoid: a trailing * admits every repository so prefixed
    loose = trust("StringLike", ["repo:jupyterhub/mybinder.org-deploy*"])
    assert allows_web_identity(loose, PROVIDER, claims("repo:jupyterhub/mybinder.org-deploy-evil:"
                                                       "ref:refs/heads/main"))
    scoped = trust("StringLike", ["repo:jupyterhub/mybinder.org-deploy:ref:refs/heads/?ain"])
    assert allows_web_identity(scoped, PROVIDER, claims(MAIN))
    assert not allows_web_identity(scoped, PROVIDER, claims(MAIN + "x"))


def test_a_matching_deny_wins_and_unknown_operators_are_refused() -> None:
    policy = trust("StringEquals", [MAIN])
    deny = trust("StringEquals", [MAIN], effect="Deny")["Statement"]
    both = {"Statement": [*policy["Statement"], *deny]}
    assert not allows_web_identity(both, PROVIDER, claims(MAIN))
    with pytest.raises(ValueError, match="ForAnyValue:StringLike"):
        condition_holds({"ForAnyValue:StringLike": {"k": "v"}}, {"k": "v"})
    assert condition_values(policy, "StringEquals", f"{ISSUER}:sub") == [MAIN]


def test_moto_lacks_eks_access_entries_so_its_environment_turns_them_off(
    moto: MotoServer,
) -> None:
    """Why TF_VAR_enable_access_entries=false in moto's environment (the production default
    is true). This fails once moto implements access entries: then drop the switch there."""
    gap = eks_access_entries_gap(moto.url)
    assert gap is not None, ("moto now implements EKS access entries: remove "
                             "TF_VAR_enable_access_entries from sandbox.moto_environment")
    assert "CreateCluster ignores accessConfig (DescribeCluster returns accessConfig=None)" in gap
    assert "CreateAccessEntry is not implemented (HTTP 404" in gap
    assert moto_environment(moto.url)["TF_VAR_enable_access_entries"] == "false"


@pytest.mark.parametrize("workflow, job, output", [
    ("cd", "staging", "deploy_role_arn"),
    ("cd", "members", "deploy_role_arn"),
    ("terraform", "plan", "terraform_plan_role_arn"),
    ("terraform", "apply", "terraform_role_arn"),
])
def test_workflows_assume_the_roles_from_the_saved_outputs(
    workflow: str, job: str, output: str
) -> None:
    """No secret holds an ARN: each AWS login reads the role from the committed outputs, and
    the output it names is one the curvenote stack declares."""
    path = REPO / ".github" / "workflows" / f"{workflow}.yml"
    steps = YAML(typ="safe", pure=True).load(path.read_text())["jobs"][job]["steps"]
    names = [s.get("name", "") for s in steps]
    login = next(s for s in steps if s.get("uses", "").startswith(
        "aws-actions/configure-aws-credentials@"))
    read = next(s for s in steps if s.get("id") == "aws-role")
    assert names.index(read["name"]) < names.index(login["name"])
    assert login["with"]["role-to-assume"] == "${{ steps.aws-role.outputs.arn }}"
    assert read["env"]["OUTPUT"] == output
    assert 'config/generated/$MEMBER.terraform.json' in read["run"]
    assert re.search(rf'^output "{output}"', (REPO / "terraform/aws/curvenote/outputs.tf")
                     .read_text(), re.M)
    assert "_ROLE_ARN" not in path.read_text()
