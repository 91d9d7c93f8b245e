"""Fixtures of the adopt tests: a copy of the mybinder-deploy fixture and a real helm repository
on 127.0.0.1 serving its umbrella chart's dependency."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.serve import serving

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mybinder-deploy"
DEPENDENCY = ("binderhub", "0.1.0")  # what the fixture's mybinder/Chart.yaml depends on


@dataclass(frozen=True)
class HelmRepo:
    """A chart repository served over HTTP on 127.0.0.1, and a helm whose config, cache and
    data live in tmp (the user's own helm setup is never read or written)."""

    url: str
    helm: str
    env: dict[str, str]

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.helm, *args], cwd=cwd, env=self.env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert proc.returncode == 0, f"helm {' '.join(args)}: {proc.stdout}{proc.stderr}"
        return proc


def helm_env(home: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
    for name in ("CACHE", "CONFIG", "DATA"):
        (home / name.lower()).mkdir(parents=True, exist_ok=True)
        env[f"HELM_{name}_HOME"] = str(home / name.lower())
    return env


@pytest.fixture(scope="session")
def helm_repo(helm_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmRepo]:
    """`helm create` + `helm package` + `helm repo index`, served by http.server on a free
    port of 127.0.0.1 for the whole session."""
    work = tmp_path_factory.mktemp("helm-repo")
    charts = work / "charts"
    charts.mkdir()
    with serving(charts) as url:
        repo = HelmRepo(url, helm_binary, helm_env(work / "helm-home"))
        name, version = DEPENDENCY
        repo.run("create", name, cwd=work)
        chart_yaml = work / name / "Chart.yaml"
        text = chart_yaml.read_text()
        assert "\nversion: 0.1.0\n" in text, text  # helm create's default, the fixture's pin
        repo.run("package", str(work / name), "--destination", str(charts))
        repo.run("repo", "index", str(charts), "--url", url)
        yield repo


@pytest.fixture
def deploy_repo(tmp_path: Path) -> Path:
    """A private copy of the fixture repository (nothing served: adopt needs no network)."""
    dest = tmp_path / "mybinder-deploy"
    shutil.copytree(FIXTURE, dest)
    return dest


@pytest.fixture
def served_deploy_repo(deploy_repo: Path, helm_repo: HelmRepo) -> Path:
    """The fixture copy as a maintainer's clone has it: mybinder/Chart.yaml pointing at the
    served repository, a Chart.lock made by `helm dependency update`, no charts/ built."""
    chart = deploy_repo / "mybinder"
    chart_yaml = chart / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("HELM_REPO_URL", helm_repo.url))
    helm_repo.run("dependency", "update", str(chart))
    shutil.rmtree(chart / "charts")
    return deploy_repo


@pytest.fixture
def adopted(served_deploy_repo: Path) -> Path:
    """The served fixture copy with the federation.yaml `adopt` wrote for it."""
    from click.testing import CliRunner

    from federation_deploy.cli.main import cli

    result = CliRunner().invoke(cli, ["adopt", str(served_deploy_repo)])
    assert result.exit_code == 0, result.output
    return served_deploy_repo
