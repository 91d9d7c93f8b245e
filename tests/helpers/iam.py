"""Read IAM trust policies the way STS does for a web identity, and probe what moto lacks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import boto3
import botocore.exceptions

ASSUME = "sts:AssumeRoleWithWebIdentity"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _like(pattern: str, value: str) -> bool:
    """IAM's StringLike: `*` any run of characters, `?` one character, case-sensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.S) is not None


OPERATORS = {
    "StringEquals": lambda pattern, value: pattern == value,
    "StringLike": _like,
}


def condition_holds(condition: Mapping[str, Mapping[str, Any]], claims: Mapping[str, str]) -> bool:
    """Every operator and every key must hold (AND); any listed value of a key may match (OR);
    a key missing from the claims fails. Other operators are refused: a policy using one must
    not look safe because this evaluator ignored it."""
    for operator, keys in condition.items():
        if operator not in OPERATORS:
            raise ValueError(f"condition operator {operator!r} is not evaluated here")
        test = OPERATORS[operator]
        for key, allowed in keys.items():
            value = claims.get(key)
            if value is None or not any(test(str(p), value) for p in _as_list(allowed)):
                return False
    return True


def allows_web_identity(policy: Mapping[str, Any], provider_arn: str,
                        claims: Mapping[str, str]) -> bool:
    """Whether a trust policy lets a token with these claims (`<issuer>:sub`, `<issuer>:aud`)
    from this OIDC provider assume the role: an Allow statement for the federated principal
    whose conditions all hold, and no Deny statement that matches."""
    allowed = False
    for statement in _as_list(policy.get("Statement", [])):
        actions = _as_list(statement.get("Action", []))
        principals = _as_list(statement.get("Principal", {}).get("Federated", []))
        if ASSUME not in actions or provider_arn not in principals:
            continue
        if not condition_holds(statement.get("Condition", {}), claims):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def condition_values(policy: Mapping[str, Any], operator: str, key: str) -> list[str]:
    """The values a trust policy's statements list for one condition key (all statements)."""
    found: list[str] = []
    for statement in _as_list(policy.get("Statement", [])):
        found += [str(v) for v in _as_list(statement.get("Condition", {}).get(operator, {})
                                           .get(key, []))]
    return found


def eks_access_entries_gap(endpoint_url: str, region: str = "us-east-2") -> str | None:
    """What this AWS endpoint lacks of EKS access entries, or None when it has them.

    Creates a throwaway cluster `access-entries-probe` with accessConfig, reads it back and
    calls CreateAccessEntry, the calls terraform's aws_eks_cluster.access_config and
    aws_eks_access_entry make."""
    kw: dict[str, Any] = {"endpoint_url": endpoint_url, "region_name": region,
                          "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    iam, eks = boto3.client("iam", **kw), boto3.client("eks", **kw)
    name = "access-entries-probe"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    gaps: list[str] = []
    try:
        eks.create_cluster(name=name, roleArn=role, resourcesVpcConfig={"subnetIds": []},
                           accessConfig={"authenticationMode": "API"})
        try:
            seen = eks.describe_cluster(name=name)["cluster"].get("accessConfig")
            if not seen or seen.get("authenticationMode") != "API":
                gaps.append(f"CreateCluster ignores accessConfig (DescribeCluster returns "
                            f"accessConfig={seen!r})")
            try:
                eks.create_access_entry(clusterName=name, principalArn=role)
            except botocore.exceptions.ClientError as exc:
                status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
                gaps.append(f"CreateAccessEntry is not implemented (HTTP {status} "
                            f"{exc.response['Error']['Code']})")
        finally:
            eks.delete_cluster(name=name)
    finally:
        iam.delete_role(RoleName=name)
    return "; ".join(gaps) or None
