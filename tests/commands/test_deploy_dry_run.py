"""`deploy --dry-run` with the real helm: templated, validated, unfetchable charts named."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from federation_deploy.actions import helm
from federation_deploy.cli.main import cli
from federation_deploy.commands import deploy as pipeline
from federation_deploy.config import load_federation
from federation_deploy.runner import Runner
from federation_deploy.values import manifests
from tests.helpers.pins import pinned

UNREACHABLE = "https://127.0.0.1:9/charts"  # connection refused at once, online or not


@pytest.fixture
def offline_config(config_dir: Path) -> Path:
    """The repository's config with every chart repository unreachable (deterministic)."""
    path = config_dir / "federation.yaml"
    path.write_text(re.sub(r"(?m)^(\s+repo: ).*$", rf"\g<1>{UNREACHABLE}", path.read_text()))
    return config_dir


def run(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config), *args], env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.helm
def test_dry_run_renders_what_it_can_and_names_what_it_cannot(
        offline_config: Path, helm_binary: str, private_tmp: Path) -> None:
    fed = load_federation(offline_config)
    report = pipeline.dry_run_member(fed, fed.member("gke"), Runner(echo=False),
                                     helm_executable=helm_binary)
    assert [t.release.name for t in report.templated] == ["federation-redirect"]
    (redirect,) = report.templated
    assert redirect.validation.valid == 5 and not redirect.validation.invalid
    assert [(f.release.name, f.fetch) for f in report.failed] == [
        ("cert-manager", True), ("ingress-nginx", True), ("binderhub", True)]
    assert all("connection refused" in f.reason for f in report.failed)
    assert report.failed[0].describe().startswith(
        f"chart cert-manager {pinned('cert-manager')} from {UNREACHABLE} could not be fetched: "
        "looks like")
    assert not report.ok
    assert report.schema_version == "1.27" and report.schema_note is None
    assert list(private_tmp.iterdir()) == []  # values went on stdin, nothing was written


@pytest.mark.helm
def test_cli_dry_run_stdout_manifests_stderr_summary_exit_1(
        offline_config: Path, helm_binary: str) -> None:
    code, out, err = run(offline_config, "deploy", "gke", "--dry-run",
                         env={"FEDERATION_DEPLOY_HELM": helm_binary})
    assert code == 1
    assert "Traceback" not in err
    docs = manifests.parse_manifests(out)
    assert sorted(d["kind"] for d in docs) == [
        "ConfigMap", "Deployment", "Ingress", "PodDisruptionBudget", "Service"]
    assert out.startswith("# federation-deploy dry-run: member gke, release federation-redirect")
    assert "# Source: federation-redirect/templates/deployment.yaml" in out
    assert "ok      federation-redirect (package:federation-redirect 0.1.0): 5 object(s) valid" \
        in err
    for chart in ("cert-manager", "ingress-nginx", "binderhub"):
        assert f"chart {chart} {pinned(chart)} from {UNREACHABLE} could not be fetched" in err
    assert "dry-run failed: 3 of 4 release(s) could not be fetched (cert-manager, " \
           "ingress-nginx, binderhub;" in err
    assert "kind:" not in err  # manifests never on stderr
    # helm's error streamed as it came is not repeated in the summary (issue 30: twice)
    assert err.count("connection refused") == 3, err
    assert "could not be fetched: helm's error above" in err


@pytest.mark.helm
def test_cli_dry_run_of_the_offline_release_passes(offline_config: Path,
                                                   helm_binary: str) -> None:
    code, out, err = run(offline_config, "deploy", "gke", "--dry-run", "--release",
                         "federation-redirect", env={"FEDERATION_DEPLOY_HELM": helm_binary})
    assert code == 0, err
    assert "dry-run ok: 1 release(s) rendered and valid" in err
    assert "kind: Deployment" in out


@pytest.mark.helm
def test_invalid_manifest_fails_the_dry_run(offline_config: Path, helm_binary: str) -> None:
    values = offline_config / "values" / "gke.yaml"
    values.write_text(values.read_text().replace("federation-redirect:\n",
                                                 "federation-redirect:\n  replicas: two\n"))
    code, out, err = run(offline_config, "deploy", "gke", "--dry-run", "--release",
                         "federation-redirect", env={"FEDERATION_DEPLOY_HELM": helm_binary})
    assert code == 1
    assert "INVALID federation-redirect (package:federation-redirect 0.1.0): 1 of 5 object(s) " \
           "invalid" in err
    assert "Deployment federation-redirect/federation-redirect: spec.replicas: 'two' is not of " \
           "type 'integer'" in err
    assert "dry-run failed: 1 have invalid manifests (federation-redirect)" in err


@pytest.mark.helm
def test_member_version_without_shipped_schemas_falls_back(offline_config: Path, edit: Any,
                                                           helm_binary: str) -> None:
    edit("federation.yaml", 'kubernetes_version: "1.27"', 'kubernetes_version: "1.24"')
    code, _, err = run(offline_config, "deploy", "gke", "--dry-run", "--release",
                       "federation-redirect", env={"FEDERATION_DEPLOY_HELM": helm_binary})
    assert code == 0, err
    assert "validated against Kubernetes 1.25 schemas" in err
    assert "no schemas for Kubernetes 1.24: validated against the nearest, 1.25" in err


def test_schema_version_choice() -> None:
    assert manifests.schema_version_for("1.28") == ("1.28", None)
    version, note = manifests.schema_version_for("1.20")
    assert version == "1.25" and note and "nearest, 1.25" in note
    version, note = manifests.schema_version_for("1.99")
    assert version == "1.37" and note and "nearest, 1.37" in note
    version, note = manifests.schema_version_for(None)
    assert version == "1.37" and note and "no kubernetes_version" in note


def test_dry_run_of_an_external_member_is_refused(config_dir: Path) -> None:
    code, _, err = run(config_dir, "deploy", "gesis", "--dry-run")
    assert code == 2
    assert "error: member 'gesis' is external" in err and "Traceback" not in err


def test_dry_run_without_helm_says_how_to_get_it(config_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(helm, "CHECKOUT_HELM", tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("FEDERATION_DEPLOY_HELM", raising=False)
    code, _, err = run(config_dir, "deploy", "gke", "--dry-run")
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: helm not found")
    assert "scripts/fetch_helm.py" in err


def test_dry_run_and_stage_do_not_mix(config_dir: Path) -> None:
    code, _, err = run(config_dir, "deploy", "gke", "--dry-run", "--stage", "verify")
    assert code == 2 and "takes no --stage" in err


SECRET_MANIFEST = """---
# Source: x/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: creds
data:
  password: aHVudGVyMg==
stringData:
  token: hunter2-token-value
---
# Source: x/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  token: hunter2-token-value
"""


def test_displayed_manifests_hide_secrets() -> None:
    shown = manifests.displayable_manifests(SECRET_MANIFEST, {"hunter2-token-value"})
    assert "hunter2" not in shown and "aHVudGVyMg==" not in shown
    assert "# Source: x/templates/secret.yaml\n" in shown
    assert "password: <redacted>" in shown and "token: <redacted>" in shown
    # the ConfigMap's value carries the secret: found in the parsed object (not by text
    # search, which helm's quoting or folding could defeat) and redacted as a whole
    configmap = shown.split("kind: ConfigMap", 1)[1]
    assert "token: <redacted>" in configmap and "***" not in configmap
    assert shown.count("---\n") == 2


def test_fetch_failure_versus_render_failure() -> None:
    fed_release = load_federation_release()
    assert helm.is_fetch_failure(fed_release, "Error: looks like ... cannot be reached")
    assert not helm.is_fetch_failure(
        fed_release, "Error: execution error at (x/templates/a.yaml:3:4): boom")
    assert helm.first_line("coalesce.go:298: warning: x\nError: the real one\n") == "the real one"


def load_federation_release() -> Any:
    from federation_deploy.config import Release

    return Release(name="x", chart="x", version="1.0.0", namespace="x", repo="https://e.org")


@pytest.mark.helm
def test_the_sandbox_entry_point(config_dir: Path, helm_binary: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDERATION_DEPLOY_HELM", helm_binary)
    fed = load_federation(config_dir)
    report = pipeline.dry_run_member(fed, fed.member("gke"), Runner(echo=False),
                                 releases=["federation-redirect"])
    assert report.ok
    assert report.summary.endswith("dry-run ok: 1 release(s) rendered and valid")
    assert "kind: ConfigMap" in report.manifests
