"""The names an AWS member's stack derives from its cluster name, and the rules that keep two
members in one account apart (pure).

The shared module (terraform/aws/modules/binderhub-eks) names its IAM roles and policies
`<cluster name>-<suffix>` and lets the member's deploy and terraform roles manage
`role/<cluster name>-*` and `policy/<cluster name>-*`. IAM names are global to an account: two
members whose cluster names are equal, or one of which is the other's followed by a dash,
would collide or reach into each other's roles. `member new` names the cluster after the
member; validate refuses an overlap.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from federation_deploy.config.model import Member

# the name terraform/aws/modules/binderhub-eks uses when cluster.name is not set
DEFAULT_CLUSTER_NAME = "binderhub"
# AWS's own limits on the names the stack derives (S3 bucket 63, IAM role 64, EKS node
# group 63)
S3_BUCKET_MAX = 63
IAM_ROLE_MAX = 64
NODE_GROUP_MAX = 63
# `member new`'s own per-member names (config/scaffold.py builds them with these)
STATE_BUCKET = "mybinder-{name}-terraform-state"
LOCK_TABLE = "mybinder-{name}-terraform-locks"
_ROLE_NAME = re.compile(r'resource\s+"aws_iam_role"\s+"[^"]+"\s*\{(?:[^{}]|\{[^{}]*\})*?'
                        r'\bname\s*=\s*"\$\{var\.cluster_name\}([^"]*)"', re.S)
_NODE_GROUP = re.compile(r'node_group_name\s*=\s*"\$\{var\.cluster_name\}([^"]*)"')
# the keys of a literal `for_each = { key = ... }` map (the GitHub roles' names)
_FOR_EACH = re.compile(r'for_each\s*=\s*\{([^{}]*)\}')
_MAP_KEY = re.compile(r'^\s*([\w-]+)\s*=', re.M)


@dataclass(frozen=True)
class NameLimit:
    """The longest member name whose derived names all fit, and the name that decides it."""

    length: int
    decided_by: str


def name_limit(module_text: str) -> NameLimit:
    """The longest member (= cluster) name an AWS member can have: computed from the state
    bucket's template and the module's role and node group names (module_text: the module's
    .tf files, concatenated). A role named with `${each.key}` counts with its longest key."""
    keys = [k for block in _FOR_EACH.findall(module_text) for k in _MAP_KEY.findall(block)]
    keys = keys or [""]
    longest_key = max(keys, key=len)
    limits = [(S3_BUCKET_MAX - len(STATE_BUCKET.format(name="")),
               f"S3 bucket {STATE_BUCKET} (at most {S3_BUCKET_MAX} characters)")]
    for suffix in _ROLE_NAME.findall(module_text):
        suffix = suffix.replace("${each.key}", longest_key)
        limits.append((IAM_ROLE_MAX - len(suffix),
                       f"IAM role {{name}}{suffix} (at most {IAM_ROLE_MAX} characters)"))
    for suffix in _NODE_GROUP.findall(module_text):
        limits.append((NODE_GROUP_MAX - len(suffix),
                       f"EKS node group {{name}}{suffix} (at most {NODE_GROUP_MAX} characters)"))
    length, decided_by = min(limits)
    return NameLimit(length, decided_by)


def cluster_name(member: Member) -> str:
    return member.cluster.name or DEFAULT_CLUSTER_NAME


def account_of(member: Member) -> str | None:
    """The AWS account a member's role_arn names (arn:aws:iam::ACCOUNT:role/...), if any."""
    arn = member.cluster.role_arn or ""
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else None


def overlaps(a: str, b: str) -> bool:
    """Whether cluster names a and b collide in IAM: equal names, or one's `<name>-*` scope
    covering the other's `<name>-<suffix>` roles and policies."""
    return a == b or b.startswith(f"{a}-") or a.startswith(f"{b}-")


def iam_conflicts(members: Mapping[str, Member]) -> Iterator[tuple[Member, Member]]:
    """(earlier, later) pairs of AWS members whose cluster names overlap and that may share an
    account (different accounts in their role_arn are the only proof they do not)."""
    aws = [m for m in members.values() if m.cloud == "aws"]
    for i, later in enumerate(aws):
        for earlier in aws[:i]:
            accounts = {account_of(earlier), account_of(later)}
            if None not in accounts and len(accounts) == 2:
                continue
            if overlaps(cluster_name(earlier), cluster_name(later)):
                yield earlier, later
