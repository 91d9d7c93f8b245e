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
