"""Another terraform than the pinned one is refused (exit 2), before it runs anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands import terraform as tf_commands
from federation_deploy.config import load_federation
from federation_deploy.errors import TerraformVersionError
from federation_deploy.runner import Runner

STUB = """#!/bin/sh
# A terraform of another version: answers `version`, fails loudly at anything else.
if [ "$1" = version ]; then
  if [ "$2" = -json ] && [ -z "$TEXT_ONLY" ]; then
    echo '{"terraform_version": "1.5.7", "platform": "linux_amd64"}'
  else
    echo "Terraform v1.5.7"
    echo "on linux_amd64"
  fi
  exit 0
fi
echo "stub terraform must not run: $*" >&2
exit 99
"""


@pytest.fixture
def stub_path(tmp_path: Path) -> str:
    binary = tmp_path / "stub-bin" / "terraform"
    binary.parent.mkdir()
    binary.write_text(STUB)
    binary.chmod(0o755)
    return f"{binary.parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.mark.parametrize("text_only", ["", "1"])
def test_wrong_version_is_refused_saying_which_and_how_to_fix(
    config_dir: Path, stub_path: str, text_only: str
) -> None:
    fed = load_federation(config_dir)
    stack = tf_commands.for_member(fed, "curvenote", Runner(echo=False),
                          env={"PATH": stub_path, "TEXT_ONLY": text_only})
    with pytest.raises(TerraformVersionError) as caught:
        stack.plan()
    message = caught.value.render()
    assert caught.value.exit_code == 2
    assert "terraform 1.5.7 found at" in message and "stub-bin/terraform" in message
    assert "pins terraform 1.11.4" in message
    assert "install terraform 1.11.4" in message


@pytest.mark.parametrize("args", [
    ["bootstrap", "curvenote"], ["init", "curvenote"], ["plan", "curvenote"],
    ["apply", "--yes", "curvenote"], ["check", "curvenote"], ["output", "curvenote"],
    ["lock", "curvenote"], ["plan", "gke"],
])
def test_every_command_refuses_with_exit_2(config_dir: Path, stub_path: str,
                                           args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "terraform", *args],
                                env={"PATH": stub_path})
    assert result.exit_code == 2, result.output
    assert "terraform 1.5.7 found at" in result.stderr
    assert "must not run" not in result.stderr


def test_missing_terraform_says_what_to_install(config_dir: Path, tmp_path: Path) -> None:
    stack = tf_commands.for_member(load_federation(config_dir), "curvenote", Runner(echo=False),
                          env={"PATH": str(tmp_path)})
    with pytest.raises(TerraformVersionError, match="terraform not found on PATH; install "
                                                    "terraform 1.11.4"):
        stack.check_version()
