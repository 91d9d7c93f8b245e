"""config.scaffold: a new member's stack files as terraform formats them, its own state, its
entry and values (the files `member new` writes; tests/commands/test_member.py writes them)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest

from federation_deploy.config import load_federation
from federation_deploy.config.aws_names import name_limit
from federation_deploy.config.scaffold import (
    MemberSpec,
    member_entry,
    provider_pin,
    stack_files,
    template_member,
    values_text,
)
from federation_deploy.config.terraform_files import parse_state_backend


def spec_for(config_dir: Path, cloud: str, name: str = "kestrel") -> MemberSpec:
    fed = load_federation(config_dir)
    return MemberSpec(name=name, cloud=cloud, url=f"https://{name}.example.org",
                      region="europe-west1" if cloud == "gcp" else "eu-west-1",
                      project="my-project" if cloud == "gcp" else None,
                      kubernetes_version="1.29", target_weight=10,
                      template=template_member(fed, cloud))


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_stacks_are_formatted_and_have_their_own_state(config_dir: Path, tmp_path: Path,
                                                       cloud: str, terraform_binary: str) -> None:
    fed = load_federation(config_dir)
    stack = tmp_path / cloud / "kestrel"
    stack.mkdir(parents=True)
    for name, text in stack_files(fed, spec_for(config_dir, cloud)).items():
        (stack / name).write_text(text)
    formatted = subprocess.run([terraform_binary, "fmt", "-check", "-diff", str(stack)],
                               capture_output=True, text=True, check=False)
    assert formatted.returncode == 0, formatted.stdout
    backend = parse_state_backend(stack)
    assert backend is not None
    others = {parse_state_backend(m.terraform.directory) for m in fed.members.values()
              if m.terraform}
    assert backend not in others


def test_the_provider_pin_is_the_clouds_other_stacks(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    text = (fed.terraform_root / "aws" / "curvenote" / "versions.tf").read_text()
    assert f'version = "{provider_pin(fed, "aws")}"' in text


def test_an_aws_entry_copies_curvenotes_releases_and_outputs(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    entry = member_entry(fed, spec_for(config_dir, "aws"))
    assert entry["terraform"]["stack"] == "aws/kestrel"
    assert entry["terraform"]["outputs"] == dict(fed.member("curvenote").terraform.outputs)
    assert [r["namespace"] for r in entry["releases"]] == [
        "cert-manager", "ingress-nginx", "kube-system", "kestrel", "kestrel"]
    assert entry["weight"] == 0


def test_a_gcp_entry_leaves_the_redirector_release_to_its_member(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    entry = member_entry(fed, spec_for(config_dir, "gcp"))
    assert entry["cluster"] == {"project": "my-project", "location": "europe-west1",
                                "name": "kestrel"}
    assert "federation-redirect" not in [r["name"] for r in entry["releases"]]
    assert "terraform" in entry and "outputs" not in entry["terraform"]


def test_values_name_the_members_hosts(config_dir: Path) -> None:
    text = values_text(spec_for(config_dir, "aws"))
    assert text is not None
    assert "hub_url: https://hub.kestrel.example.org" in text
    assert "awsRegion: eu-west-1" in text
    assert values_text(spec_for(config_dir, "external")) is None


def iam_names_and_scopes(module_text: str, main_tf: str, cluster: str
                         ) -> tuple[set[str], set[str]]:
    """The IAM role/policy and ECR repository names a stack of the shared module creates, and
    the `*` scopes its roles may manage, with the stack's cluster name and registry prefix
    substituted (parsed from the module and the stack's main.tf, not restated here)."""
    prefix = re.search(r'registry_prefix\s*=\s*"([^"]+)"', main_tf)
    assert prefix is not None
    keys = [k for block in re.findall(r'for_each\s*=\s*\{([^{}]*)\}', module_text)
            for k in re.findall(r'^\s*([\w-]+)\s*=', block, re.M)]
    text = module_text.replace("${var.cluster_name}", cluster).replace(
        "${var.registry_prefix}", prefix.group(1))
    names: set[str] = set()
    for name in re.findall(r'\bname\s*=\s*"([^"$]*(?:\$\{each\.key\}[^"$]*)?)"', text):
        names |= {name.replace("${each.key}", k) for k in keys} if "${each.key}" in name \
            else {name}
    scopes = set(re.findall(r':(?:role|policy|repository)/([^"]*\*)"', text))
    return names, scopes


def test_two_aws_members_in_one_account_are_disjoint(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    module = fed.terraform_root / "aws" / "modules" / "binderhub-eks"
    module_text = "".join(p.read_text() for p in sorted(module.glob("*.tf")))
    stacks = {"curvenote": ((fed.terraform_root / "aws" / "curvenote" / "main.tf").read_text(),
                            fed.member("curvenote").cluster.name)}
    for name in ("kestrel", "kestrel2"):
        spec = spec_for(config_dir, "aws", name)
        entry = member_entry(fed, spec)
        assert entry["cluster"]["name"] == name  # not curvenote's `binderhub`
        variables = stack_files(fed, spec)["variables.tf"]
        assert re.search(r'variable "cluster_name" \{[^}]*default\s*=\s*"' + name + '"',
                         variables)
        assert f"clusterName: {name}\n" in (values_text(spec) or "")
        stacks[name] = (stack_files(fed, spec)["main.tf"], entry["cluster"]["name"])
    parsed = {name: iam_names_and_scopes(module_text, main, cluster)
              for name, (main, cluster) in stacks.items()}
    assert all(names and scopes for names, scopes in parsed.values())
    for name, (names, _) in parsed.items():
        for other, (other_names, scopes) in parsed.items():
            if other == name:
                continue
            assert not names & other_names, (name, other)
            reached = [(n, s) for n in names for s in scopes if fnmatch.fnmatchcase(n, s)]
            assert not reached, f"{other}'s scopes reach {name}'s names: {reached}"


def test_the_aws_name_limit_is_computed_from_the_templates(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    module = fed.terraform_root / "aws" / "modules" / "binderhub-eks"
    text = "".join(p.read_text() for p in sorted(module.glob("*.tf")))
    limit = name_limit(text)
    assert limit.length == 63 - len("mybinder--terraform-state") == 38
    # a module with a longer role name lowers it: the IAM role's 64 decides
    longer = text + ('\nresource "aws_iam_role" "x" {\n  name = "${var.cluster_name}-'
                     + "r" * 40 + '"\n}\n')
    assert name_limit(longer).length == 64 - 41
    assert "IAM role" in name_limit(longer).decided_by
