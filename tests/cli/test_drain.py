"""traffic drain/restore/set refuse bad input at the edge, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli


@pytest.mark.parametrize("action", [["drain", "ovh2", "--reason", "x"], ["restore", "ovh2"],
                                    ["set", "ovh2", "--weight", "3"]])
def test_a_redirector_url_without_scheme_is_refused_before_writing(
        config_dir: Path, tmp_path: Path, action: list[str]) -> None:
    before = (config_dir / "federation.yaml").read_text()
    target = tmp_path / "config.json"
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "traffic", *action,
                                      "--publish", f"file:{target}",
                                      "--redirector-url", "127.0.0.1:5", "--yes"])
    assert result.exit_code == 2, result.output
    assert "--redirector-url: expected an http(s) URL" in result.stderr
    assert (config_dir / "federation.yaml").read_text() == before
    assert not target.exists()


def test_a_weight_out_of_bounds_is_a_usage_error_of_the_option(config_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "traffic", "set", "ovh2",
                                      "--weight", "1e308", "--yes"])
    assert result.exit_code == 2 and "--weight" in result.stderr


@pytest.mark.parametrize("args", [["traffic", "set", "ovh2", "--weight", "1e-300", "--yes"],
                                  ["ramp", "ovh2", "--to-weight", "0.00001", "--dry-run"]])
def test_a_tiny_non_zero_weight_is_refused(config_dir: Path, args: list[str]) -> None:
    # issue 29 re-trial: 1e-300 was written as 300 digits; the bound is the config's own
    before = (config_dir / "federation.yaml").read_text()
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), *args])
    assert result.exit_code == 2, result.output
    assert "a weight other than 0 is at least 0.0001" in result.stderr
    assert (config_dir / "federation.yaml").read_text() == before


# -- free text and URLs as they are printed (issue 29) -----------------------------------------


def test_a_reason_with_a_newline_and_a_workflow_command_stays_on_its_line(
        config_dir: Path, tmp_path: Path) -> None:
    """The reason was printed raw: its newline started a log line of its own, and a line
    starting with `::error::` is an annotation under GitHub Actions."""
    reason = "disk full\n::error::forged annotation\x1b[31m"
    target = tmp_path / "config.json"
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "traffic", "drain",
                                      "ovh2", "--reason", reason, "--publish", f"file:{target}",
                                      "--yes"])
    assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "traffic"])
    for output in (result.stderr, result.stdout, shown.stdout):
        assert not [line for line in output.splitlines() if line.lstrip().startswith("::")]
        assert "\x1b" not in output
    assert "disk full\\n: :error: :forged annotation\\x1b[31m" in result.output
    assert "disk full\\n: :error: :forged annotation" in shown.stdout
    # kept as written where it is data: federation.yaml
    assert "forged annotation" in (config_dir / "federation.yaml").read_text()


def test_a_password_in_the_redirector_url_is_never_printed(config_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "traffic",
                                      "--redirector-url", "https://user:secretpw@127.0.0.1:9"])
    assert "secretpw" not in result.output and "user:" not in result.output
    assert "https://***@127.0.0.1:9/active_hosts" in result.stderr
