"""The kubectl adapter: workloads and their rollout status, exact argv via a recording Runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation_deploy.actions.kube_auth import ClusterAccess
from federation_deploy.actions.kubectl import rollout_status
from federation_deploy.errors import ToolError
from tests.helpers.recording import RecordingRunner

ACCESS = ClusterAccess("gke", Path("/tmp/kc.yaml"), None, "kubectl")


def test_rollout_status_of_every_workload(recorder: RecordingRunner) -> None:
    done = rollout_status(recorder, ACCESS, ["a", "b", "a"], timeout="3m")
    assert done == ["a/deployment.apps/a-web", "a/daemonset.apps/a-agent",
                    "b/deployment.apps/b-web", "b/daemonset.apps/b-agent"]
    assert recorder.words()[:3] == [
        ["kubectl", "get", "deployments,daemonsets", "--namespace", "a", "--output", "name",
         "--kubeconfig", "/tmp/kc.yaml"],
        ["kubectl", "rollout", "status", "deployment.apps/a-web", "--namespace", "a",
         "--timeout=3m", "--kubeconfig", "/tmp/kc.yaml"],
        ["kubectl", "rollout", "status", "daemonset.apps/a-agent", "--namespace", "a",
         "--timeout=3m", "--kubeconfig", "/tmp/kc.yaml"],
    ]


def test_rollout_of_an_empty_namespace(recorder: RecordingRunner) -> None:
    recorder.answer(["kubectl", "get"], 0, "")
    assert rollout_status(recorder, ACCESS, ["empty"]) == []
    assert len(recorder.calls) == 1


def test_rollout_failure_stops_at_the_workload(recorder: RecordingRunner) -> None:
    recorder.answer(["kubectl", "rollout", "status", "deployment.apps/a-web"], 1, "",
                    "error: timed out waiting for the condition\n")
    with pytest.raises(ToolError) as caught:
        rollout_status(recorder, ACCESS, ["a", "b"])
    assert caught.value.render().startswith(
        "stage 'rollout' failed: deployment.apps/a-web in namespace 'a' did not finish")
    assert "timed out waiting for the condition" in caught.value.render()
    assert len(recorder.calls) == 2
