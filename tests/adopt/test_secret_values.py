"""Secret values in an adopted repository with plain (unlocked) secrets files: never printed by
any command, and only the values the secret layers set are secret (the plain values beside
them, digits in versions, are neither censored nor compared as secrets)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from federation_deploy.cli.main import cli
from federation_deploy.config import load_federation
from federation_deploy.values.render import render_releases
from tests.adopt.conftest import HelmRepo
from tests.adopt.layouts import LAYOUTS, build

PASSWORD = "Zq9-distinctive-registry-secret-7x"
COOKIE = "Kw4-distinctive-cookie-secret-2v"


def run(repo: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config-dir", str(repo), *args],
                              env={"CI": "", **(env or {})})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The 2026 layout with distinctive secrets, cert-manager v1.20.2 and plain short values
    (replicaCount 2, a `0`) under `binderhub`, which the common secrets file also sets."""
    repo = build(LAYOUTS["2026"], tmp_path / "deploy")
    (repo / "cert-manager.env").write_text("export CERT_MANAGER_VERSION=v1.20.2\n")
    (repo / "secrets" / "config" / "common" / "common.yaml").write_text(
        f"binderhub:\n  registry:\n    password: {PASSWORD}\n")
    (repo / "secrets" / "config" / "prod.yaml").write_text(
        f"federationRedirect:\n  cookieSecret: {COOKIE}\n")
    (repo / "config" / "common" / "20-ingress.yaml").write_text(
        "binderhub:\n  replicaCount: 2\n  extraEnv:\n    RETRIES: '0'\n"
        "ingress:\n  className: traefik\n")
    result = CliRunner().invoke(cli, ["adopt", str(repo)])
    assert result.exit_code == 0, result.output
    return repo


def test_secret_strings_are_the_leaves_secret_layers_set(repo: Path) -> None:
    fed = load_federation(repo)
    (mybinder,) = [r for r in render_releases(fed, fed.member("hetzner-2i2c"))
                   if r.release.name == "mybinder"]
    assert ("binderhub", "registry", "password") in mybinder.secret_paths
    assert ("binderhub",) not in mybinder.secret_paths
    assert ("binderhub", "replicaCount") not in mybinder.secret_paths
    # the member's secrets file replaces the common password
    assert mybinder.secret_strings() == {"hetzner-2i2c-registry-password"}
    (staging,) = [r for r in render_releases(fed, fed.member("staging"))
                  if r.release.name == "mybinder"]
    assert staging.secret_strings() == {PASSWORD}
    # a short value a secret layer sets is still censored, unless a plain layer sets it too
    mybinder.values["binderhub"]["registry"]["port"] = "443"
    mybinder.values["binderhub"]["registry"]["retries"] = "2"
    for name, value in (("port", "443"), ("retries", "2")):
        origin = mybinder.origins[("binderhub", "registry", "password")][-1]
        mybinder.origins[("binderhub", "registry", name)] = [
            type(origin)(origin.layer, origin.location, value, True)]
    assert "443" in mybinder.secret_strings()
    assert "2" not in mybinder.secret_strings()  # replicaCount: 2 is plain


def test_shadow_with_plain_secrets_files_has_no_false_differences(repo: Path) -> None:
    for member in ("prod", "hetzner-2i2c", "staging"):
        result = run(repo, "shadow", member, "--yes")
        assert result.exit_code == 0, result.output
        assert "***" not in result.stdout
        assert PASSWORD not in result.output and COOKIE not in result.output


@pytest.mark.helm
def test_a_secret_value_is_never_printed(repo: Path, helm_repo: HelmRepo) -> None:
    chart = repo / "mybinder"
    chart_yaml = chart / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("HELM_REPO_URL", helm_repo.url))
    helm_repo.run("dependency", "update", str(chart))
    shutil.rmtree(chart / "charts")
    outputs = {
        "validate": run(repo, "validate"),
        "render": run(repo, "render", "hetzner-2i2c"),
        "render prod": run(repo, "render", "prod"),
        "explain": run(repo, "render", "hetzner-2i2c", "--explain", "mybinder.binderhub.registry"),
        "explain parent": run(repo, "render", "hetzner-2i2c", "--explain", "mybinder.binderhub"),
        "shadow": run(repo, "shadow", "prod", "--yes"),
        "dry-run": run(repo, "-v", "deploy", "hetzner-2i2c", "--dry-run", "--release",
                       "mybinder", env={"FEDERATION_DEPLOY_HELM": helm_repo.helm,
                                        **helm_repo.env}),
    }
    for name, result in outputs.items():
        assert PASSWORD not in result.output, name
        assert COOKIE not in result.output, name
        assert "hetzner-2i2c-registry-password" not in result.output, name
    assert outputs["validate"].exit_code == 0, outputs["validate"].output
    assert outputs["dry-run"].exit_code == 0, outputs["dry-run"].output
    # the plain values beside the secret ones are shown as they are
    assert '"replicaCount": 2' in outputs["explain parent"].stdout
    assert "<redacted>" in outputs["explain"].stdout
    assert "replicaCount: 2" in outputs["render"].stdout
