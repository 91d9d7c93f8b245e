"""The fixture's helm repository is real: the umbrella chart's dependency builds from it."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.adopt.conftest import DEPENDENCY, HelmRepo

pytestmark = pytest.mark.helm


def test_dependency_build_into_a_private_cache_keeps_chart_lock(
    served_deploy_repo: Path, helm_repo: HelmRepo, tmp_path: Path
) -> None:
    chart = served_deploy_repo / "mybinder"
    lock = (chart / "Chart.lock").read_text()
    assert f"repository: {helm_repo.url}" in lock and "version: 0.1.0" in lock
    # dependency build (unlike update) only resolves repositories helm knows: register the
    # served one in the private config, never in the user's
    helm_repo.run("repo", "add", "fixture", helm_repo.url)
    cache = tmp_path / "private-cache"
    helm_repo.run("dependency", "build", str(chart), "--repository-cache", str(cache))
    name, version = DEPENDENCY
    built = chart / "charts" / f"{name}-{version}.tgz"
    with tarfile.open(built) as archive:
        assert f"{name}/Chart.yaml" in archive.getnames()
    assert (chart / "Chart.lock").read_text() == lock  # never rewritten by a build
    assert any(cache.iterdir())  # the index went to the private cache
    rendered = helm_repo.run("template", "prod", str(chart), "--set",
                             "federationRedirect.enabled=true").stdout
    assert "kind: Deployment" in rendered and "name: prod-binderhub" in rendered
    assert "name: federation-redirect" in rendered


def test_dependency_build_fails_without_the_repository(
    served_deploy_repo: Path, helm_repo: HelmRepo
) -> None:
    """Without the repository registered, build refuses: the check above is not vacuous."""
    import subprocess

    proc = subprocess.run([helm_repo.helm, "dependency", "build",
                           str(served_deploy_repo / "mybinder")],
                          env=helm_repo.env | {"HELM_REPOSITORY_CONFIG": "/nonexistent/r.yaml"},
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode != 0
    assert "no repository definition" in proc.stderr
