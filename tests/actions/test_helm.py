"""The helm adapter's publish step: only the redirector release upgraded, with its credentials."""

from __future__ import annotations

import json
from pathlib import Path

from federation_deploy.actions import helm
from federation_deploy.actions.kube_auth import ClusterTools
from federation_deploy.config import load_federation
from tests.helpers.recording import RecordingRunner


def test_upgrade_redirector_release_runs_only_auth_and_the_upgrade(
        config_dir: Path, recorder: RecordingRunner, private_tmp: Path) -> None:
    fed = load_federation(config_dir)
    said: list[str] = []
    deployed = helm.upgrade_redirector_release(
        fed, recorder, helm_executable="helm", timeout="5m",
        tools=ClusterTools(kubectl="kubectl", gcloud="gcloud"), progress=said.append)
    # `helm get values`: the generation it serves, compared before the upgrade (weights.py)
    assert [" ".join(c.words[:2]) for c in recorder.calls] == [
        "helm version", "gcloud container", "kubectl get", "helm get", "helm show",
        "helm upgrade"]
    upgrade = recorder.calls[-1]
    assert upgrade.words[2] == "federation-redirect" and "--atomic" in upgrade.words
    assert upgrade.words[upgrade.words.index("--timeout") + 1] == "5m"
    assert json.loads(upgrade.input or "")["federationRedirect"]["hosts"]["gke"]["weight"] == 60
    assert (deployed.name, deployed.revision, deployed.status) == (
        "federation-redirect", 3, "deployed")
    assert said == ["publish: helm upgrade federation-redirect on gke"]
    assert list(private_tmp.iterdir()) == []  # the private KUBECONFIG is gone
