"""The helm adapter's publish step: only the redirector release upgraded, with its credentials."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from federation_deploy.actions import helm
from federation_deploy.actions.kube_auth import ClusterTools
from federation_deploy.config import load_federation
from federation_deploy.runner import Runner
from federation_deploy.traffic import publish
from tests.helpers.recording import RecordingRunner, locate_helm


def test_upgrade_redirector_release_runs_only_auth_and_the_upgrade(
        config_dir: Path, recorder: RecordingRunner, private_tmp: Path) -> None:
    fed = load_federation(config_dir)
    said: list[str] = []
    deployed = publish.upgrade_redirector_release(
        fed, recorder, helm_executable="helm", timeout="5m",
        tools=ClusterTools(kubectl="kubectl", gcloud="gcloud"), progress=said.append)
    # `helm get values`: the generation it serves, compared before the upgrade (traffic/weights.py)
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


def test_helm_streams_its_stderr_only_and_gets_debug_with_v(
        config_dir: Path, recorder: RecordingRunner, private_tmp: Path) -> None:
    fed = load_federation(config_dir)
    recorder.full_output = True  # what -v sets
    publish.upgrade_redirector_release(fed, recorder, helm_executable="helm",
                                       tools=ClusterTools(kubectl="kubectl", gcloud="gcloud"))
    helm_calls = [c for c in recorder.calls if c.tool == "helm" and c.words[1] != "version"]
    assert helm_calls and all("--debug" in c.words for c in helm_calls)
    # stdout is JSON/YAML pyhelm3 parses: only stderr is shown as it comes
    assert {c.live for c in helm_calls} == {"stderr"}


def test_without_v_no_debug(config_dir: Path, recorder: RecordingRunner,
                            private_tmp: Path) -> None:
    publish.upgrade_redirector_release(load_federation(config_dir), recorder,
                                       helm_executable="helm",
                                       tools=ClusterTools(kubectl="kubectl", gcloud="gcloud"))
    assert not any("--debug" in c.words for c in recorder.calls)


def test_real_helm_answers_with_debug_and_streams_nothing_on_stdout() -> None:
    executable, why = locate_helm()
    if executable is None:
        pytest.skip(why)
    shown = io.StringIO()
    runner = Runner(echo=False, echo_to=shown, stream=True, full_output=True)
    client = helm.Helm(runner, executable=executable)  # `helm version --short --debug`
    assert client.version.startswith("3.")
    assert "v3." not in shown.getvalue()  # the version (stdout, data) was not streamed
