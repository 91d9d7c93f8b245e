"""config.scaffold: a new member's stack files as terraform formats them, its own state, its
entry and values (the files `member new` writes; tests/commands/test_member.py writes them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from federation_deploy.config import load_federation
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
