"""`federation-deploy deploy` of the redirector release to a real kind cluster (CI's kind job).

Runs only where a cluster is given: FEDERATION_DEPLOY_KIND_KUBECONFIG (e.g. `kind get
kubeconfig > kind.yaml`) and FEDERATION_DEPLOY_KIND_IMAGE (an image built from the Dockerfile
and loaded with `kind load docker-image`). The config it deploys is built here, so the config
part is also checked everywhere else.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.config import load_federation

KUBECONFIG = os.environ.get("FEDERATION_DEPLOY_KIND_KUBECONFIG", "")
IMAGE = os.environ.get("FEDERATION_DEPLOY_KIND_IMAGE", "")
NAMESPACE = "federation-redirect"

FEDERATION = """\
redirector:
  host: federation.kind.test
  member: kind
  release: federation-redirect
members:
  kind:
    url: http://127.0.0.1:8080
    cloud: kubeconfig
    prime: true
    weight: {weight}
    cluster:
      kubeconfig: kind.yaml
    releases:
      - name: federation-redirect
        chart: package:federation-redirect
        version: 0.1.0
        namespace: {namespace}
  other:
    url: https://binder.example.org
    cloud: external
    weight: 1
"""


def kind_config(directory: Path, image: str, kubeconfig_text: str, weight: int = 3) -> Path:
    config = directory / "config"
    (config / "values").mkdir(parents=True)
    (config / "secrets").mkdir()
    (config / "federation.yaml").write_text(FEDERATION.format(weight=weight, namespace=NAMESPACE))
    repository, _, tag = image.rpartition(":")
    (config / "values" / "kind.yaml").write_text(
        "federation-redirect:\n"
        f"  image:\n    repository: {repository}\n    tag: {tag}\n    pullPolicy: Never\n"
        "  resources:\n    requests:\n      cpu: 10m\n")
    secret = config / "secrets" / "kind.yaml"
    secret.write_text(kubeconfig_text)
    secret.chmod(0o600)
    return config


def cli_run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config), *args], env={"CI": "true"})
    return result.exit_code, result.stdout, result.stderr


def test_the_kind_config_is_valid(tmp_path: Path) -> None:
    config = kind_config(tmp_path, "federation-deploy:ci", "apiVersion: v1\nkind: Config\n")
    fed = load_federation(config)
    assert fed.member("kind").release("federation-redirect").package_chart is not None
    code, _, err = cli_run(config, "validate")
    assert code == 0, err


def pod_uids(kubeconfig: Path) -> list[str]:
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "--namespace", NAMESPACE, "get", "pods",
         "--output", "jsonpath={.items[*].metadata.uid}"],
        check=True, capture_output=True, text=True).stdout
    return sorted(out.split())


@pytest.mark.helm
@pytest.mark.skipif(not (KUBECONFIG and IMAGE),
                    reason="no kind cluster: set FEDERATION_DEPLOY_KIND_KUBECONFIG and "
                           "FEDERATION_DEPLOY_KIND_IMAGE (CI's kind job does)")
def test_deploy_the_redirector_to_kind(tmp_path: Path, helm_binary: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDERATION_DEPLOY_HELM", helm_binary)
    config = kind_config(tmp_path, IMAGE, Path(KUBECONFIG).read_text())

    code, _, err = cli_run(config, "deploy", "kind", "--stage", "releases", "--timeout", "5m")
    assert code == 0, err
    assert "rollout: 1 deployment(s)/daemonset(s) rolled out" in err

    code, out, err = cli_run(config, "diff", "kind")
    assert code == 0, err + out  # what is deployed is what config renders

    # a weight change: only the ConfigMap changes, and no pod restarts for it
    before = pod_uids(Path(KUBECONFIG))
    assert len(before) == 2
    changed = kind_config(tmp_path / "changed", IMAGE, Path(KUBECONFIG).read_text(), weight=7)
    code, out, err = cli_run(changed, "diff", "kind")
    assert code == 3, err
    assert "ConfigMap" in out and "Deployment" not in out
    code, _, err = cli_run(changed, "deploy", "kind", "--stage", "releases", "--timeout", "5m")
    assert code == 0, err
    assert pod_uids(Path(KUBECONFIG)) == before
    configmap = subprocess.run(
        ["kubectl", "--kubeconfig", KUBECONFIG, "--namespace", NAMESPACE, "get", "configmap",
         "federation-redirect", "--output", "jsonpath={.data.config\\.json}"],
        check=True, capture_output=True, text=True).stdout
    assert json.loads(configmap)["hosts"]["kind"]["weight"] == 7
