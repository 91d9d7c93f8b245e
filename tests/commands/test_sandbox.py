"""`sandbox member`: a sandbox's stand-in told to fail, recover or report other versions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.sandbox.member import StandinHandle, start_standin

CONFIG = """\
sandbox:
  redirector_config: redirector/config.json
charts:
  binderhub:
    repo: https://jupyterhub.github.io/helm-chart/
    version: 1.0.0
  federation-redirect:
    chart: package:federation-redirect
    version: 0.1.0
redirector:
  host: redirector.test
  member: alpha
  release: federation-redirect
members:
  alpha:
    url: {url}
    cloud: kubeconfig
    prime: true
    weight: 10
    cluster: {{kubeconfig: alpha.yml}}
    releases:
      - {{name: federation-redirect, chart: federation-redirect, namespace: redirect}}
"""


@pytest.fixture
def alpha(tmp_path: Path) -> Iterator[tuple[Path, StandinHandle]]:
    standin = start_standin("alpha", versions={"binderhub": "1.0.0", "jupyterhub": "5.0"})
    try:
        (tmp_path / "secrets").mkdir()
        (tmp_path / "secrets" / "alpha.yml").write_text("apiVersion: v1\nkind: Config\n")
        (tmp_path / "federation.yaml").write_text(CONFIG.format(url=standin.url))
        yield tmp_path, standin
    finally:
        standin.stop()


def run(config_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "sandbox", "member",
                                      *args])
    return result.exit_code, result.output


def test_a_stand_in_is_told_to_fail_and_report_a_version(
        alpha: tuple[Path, StandinHandle]) -> None:
    config_dir, standin = alpha
    code, out = run(config_dir, "alpha", "--fail-every", "2", "--unhealthy",
                    "--version", "binderhub=1.1.0")
    assert code == 0, out
    assert standin.state.failure_every == 2 and standin.state.healthy is False
    # merged: the other keys stay
    assert standin.state.versions == {"binderhub": "1.1.0", "jupyterhub": "5.0"}
    assert "alpha: unhealthy; every 2th launch fails" in out
    code, out = run(config_dir, "alpha", "--healthy", "--fail-every", "0")
    assert code == 0 and "alpha: healthy; no launch fails" in out, out
    assert standin.state.healthy is True and standin.state.failure_every == 0


def test_only_in_a_sandbox_and_with_a_clear_error(alpha: tuple[Path, StandinHandle]) -> None:
    config_dir, _ = alpha
    code, out = run(config_dir, "alpha", "--version", "1.1.0")
    assert code == 2 and "expected KEY=VERSION" in out
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text().replace("sandbox:\n  redirector_config: "
                                             "redirector/config.json\n", ""))
    code, out = run(config_dir, "alpha", "--unhealthy")
    assert code == 2 and "is not a sandbox" in out
