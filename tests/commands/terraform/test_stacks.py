"""Every stack is formatted and parses; GCP lock files, stacks whose provider is missing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.actions import terraform as tf
from federation_deploy.cli.main import cli
from federation_deploy.commands import terraform as tf_commands
from federation_deploy.config import display_path, load_federation
from federation_deploy.config import terraform_files as tff
from federation_deploy.errors import LockFileError, ProviderUnavailableError
from federation_deploy.runner import Runner
from tests.conftest import REPO

pytestmark = pytest.mark.terraform

STACKS = ["aws/bootstrap", "aws/modules/binderhub-eks", "aws/curvenote",
          "gcp/modules/mybinder", "gcp/prod", "gcp/staging"]


def test_every_stack_is_formatted(terraform_binary: str) -> None:
    proc = subprocess.run([terraform_binary, "fmt", "-check", "-recursive", "-diff",
                           "-no-color", str(REPO / "terraform")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for stack in STACKS:
        assert list((REPO / "terraform" / stack).glob("*.tf")), stack


@pytest.mark.parametrize("stack", ["gcp/prod", "gcp/staging"])
def test_gcp_stacks_parse_up_to_the_missing_google_provider(
    terraform_binary: str, config_dir: Path, tmp_path: Path, stack: str
) -> None:
    """init reads the whole configuration (modules included) before it installs providers:
    with an empty mirror the only error left is that hashicorp/google is not there."""
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    rc = tmp_path / "cli.tfrc"
    rc.write_text(tf.mirror_cli_config(str(empty)))
    proc = subprocess.run(
        [terraform_binary, "init", "-backend=false", "-input=false", "-no-color"],
        cwd=config_dir.parent / "terraform" / stack, capture_output=True, text=True,
        env={**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "CHECKPOINT_DISABLE": "1"},
        check=False)
    output = proc.stdout + proc.stderr
    assert "- mybinder in ../modules/mybinder" in output
    assert "Failed to query available provider packages" in output
    assert "provider registry.terraform.io/hashicorp/google was not" in " ".join(output.split())
    assert output.count("Error:") == 1, output


def test_gcp_stacks_commit_the_lock_of_the_pinned_google_provider() -> None:
    """The lock files pin exactly the version versions.tf requires, with the provider's
    published checksums (one zh: per platform package), so init -lockfile=readonly passes
    wherever the registry is reachable."""
    for stack in ("gcp/prod", "gcp/staging"):
        lock = REPO / "terraform" / stack / ".terraform.lock.hcl"
        assert tff.locked_providers(lock) == [("registry.terraform.io/hashicorp/google", "4.63.0")]
        assert 'version = "4.63.0"' in (REPO / "terraform" / stack / "versions.tf").read_text()
        assert lock.read_text().count('"zh:') == 12
    module = (REPO / "terraform" / "gcp" / "modules" / "mybinder" / "versions.tf").read_text()
    assert 'version = "4.63.0"' in module


def test_gcp_stack_whose_provider_is_not_in_the_mirror_is_refused_by_name(
    terraform_binary: str, config_dir: Path, plugin_mirror: str,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a mirror lacking hashicorp/google, plan says which provider is missing where
    (before running terraform at all); validate no longer warns: the lock file is there."""
    monkeypatch.setenv("TF_PLUGIN_MIRROR", plugin_mirror)
    fed = load_federation(config_dir)
    with pytest.raises(ProviderUnavailableError) as caught:
        tf_commands.for_member(fed, "gke", Runner(echo=False)).plan()
    message = str(caught.value)
    assert f"hashicorp/google 4.63.0 (pinned by {display_path(config_dir.parent)}" in message
    assert f"is not in TF_PLUGIN_MIRROR={plugin_mirror}" in message
    assert "this stack is skipped here" in message
    assert not (config_dir.parent / "terraform" / "gcp" / "prod" / ".terraform").exists()
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "validate"])
    assert result.exit_code == 0, result.stderr
    assert "no .terraform.lock.hcl" not in result.stderr


def test_a_stack_without_lock_file_is_still_refused(
    terraform_binary: str, config_dir: Path
) -> None:
    (config_dir.parent / "terraform" / "gcp" / "prod" / ".terraform.lock.hcl").unlink()
    fed = load_federation(config_dir)
    with pytest.raises(LockFileError, match="gke \\(gcp/prod\\) has no .terraform.lock.hcl"):
        tf_commands.for_member(fed, "gke", Runner(echo=False)).plan()


def test_providers_missing_from_mirror_reads_both_layouts(tmp_path: Path) -> None:
    lock = tmp_path / ".terraform.lock.hcl"
    lock.write_text('provider "registry.terraform.io/hashicorp/aws" {\n  version     = "5.100.0"\n'
                    '  hashes = []\n}\n\nprovider "registry.terraform.io/hashicorp/google" {\n'
                    '  version     = "4.63.0"\n  hashes = []\n}\n')
    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64").mkdir(parents=True)
    assert tff.providers_missing_from_mirror(lock, mirror) == ["hashicorp/google 4.63.0"]
    packed = mirror / "registry.terraform.io/hashicorp/google"
    packed.mkdir(parents=True)
    assert tff.providers_missing_from_mirror(lock, mirror) == ["hashicorp/google 4.63.0"]
    # another version in the mirror: init is left to say precisely what disagrees
    (packed / "terraform-provider-google_4.62.0_linux_amd64.zip").write_bytes(b"")
    assert tff.providers_missing_from_mirror(lock, mirror) == []
    (packed / "terraform-provider-google_4.62.0_linux_amd64.zip").unlink()
    (mirror / "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64").rmdir()
    assert tff.providers_missing_from_mirror(lock, mirror) == [
        "hashicorp/aws 5.100.0", "hashicorp/google 4.63.0"]


def test_validate_fails_on_a_pin_that_disagrees(config_dir: Path) -> None:
    versions = config_dir.parent / "terraform" / "aws" / "curvenote" / "versions.tf"
    versions.write_text(versions.read_text().replace('"1.11.4"', '"1.11.3"'))
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "validate"])
    assert result.exit_code == 2
    assert "aws/curvenote/versions.tf:4: required_version: says '1.11.3'" in result.stderr
