"""A missing config directory that came from FEDERATION_DEPLOY_CONFIG_DIR says so, for every
command: after `sandbox down`, the sandbox's exported config dir is gone, and the next
`sandbox up` stopped with "config directory not found (use --config-dir)" (issue 30)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli

COMMANDS = (["validate"], ["traffic"], ["sandbox", "up"], ["render", "gke"], ["ci-matrix"])


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_missing_directory_from_the_environment_names_the_variable(
        tmp_path: Path, command: list[str]) -> None:
    gone = tmp_path / "federation-deploy-sandbox-0" / "config"  # removed by `sandbox down`
    result = CliRunner().invoke(cli, [*command, *(["--dir", str(tmp_path / "sb")]
                                                  if command[0] == "sandbox" else [])],
                                env={"FEDERATION_DEPLOY_CONFIG_DIR": str(gone)})
    assert result.exit_code == 2, result.output
    assert f"{gone}: config directory not found: it is FEDERATION_DEPLOY_CONFIG_DIR's " \
           "(unset FEDERATION_DEPLOY_CONFIG_DIR, or use --config-dir)" in result.output
    assert not (tmp_path / "sb").exists()


def test_a_missing_directory_from_the_option_says_use_config_dir(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    result = CliRunner().invoke(cli, ["--config-dir", str(gone), "validate"],
                                env={"FEDERATION_DEPLOY_CONFIG_DIR": str(tmp_path)})
    assert result.exit_code == 2, result.output
    assert f"{gone}: config directory not found (use --config-dir)" in result.output
    assert "FEDERATION_DEPLOY_CONFIG_DIR" not in result.output
