"""Cluster access: binaries found or a one-line fix; a private KUBECONFIG, always removed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from federation_deploy.actions.kube_auth import (
    ClusterTools,
    cluster_access,
    find_cluster_tools,
    is_unreachable,
    require_binary,
)
from federation_deploy.config import Federation, load_federation
from federation_deploy.errors import MissingToolError, UsageError
from tests.helpers.recording import RecordingRunner


@pytest.fixture
def fed(config_dir: Path) -> Federation:
    return load_federation(config_dir)


def which_only(*present: str):  # type: ignore[no-untyped-def]
    return lambda name: f"/opt/bin/{name}" if name in present else None


def test_tools_per_cloud(fed: Federation) -> None:
    every = which_only("kubectl", "gcloud", "gke-gcloud-auth-plugin", "aws")
    assert find_cluster_tools(fed.member("gke"), every) == ClusterTools(
        "/opt/bin/kubectl", gcloud="/opt/bin/gcloud")
    assert find_cluster_tools(fed.member("curvenote"), every) == ClusterTools(
        "/opt/bin/kubectl", aws="/opt/bin/aws")
    assert find_cluster_tools(fed.member("ovh2"), every) == ClusterTools("/opt/bin/kubectl")


@pytest.mark.parametrize(("member", "present", "missing", "fix"), [
    ("gke", ("kubectl",), "gcloud", "install the Google Cloud CLI"),
    ("gke", ("kubectl", "gcloud"), "gke-gcloud-auth-plugin",
     "gcloud components install gke-gcloud-auth-plugin"),
    ("curvenote", ("kubectl",), "aws", "install the AWS CLI"),
    ("ovh2", (), "kubectl", "install kubectl"),
])
def test_missing_binary_is_one_line_with_the_fix(fed: Federation, member: str,
                                                 present: tuple[str, ...], missing: str,
                                                 fix: str) -> None:
    with pytest.raises(MissingToolError) as caught:
        find_cluster_tools(fed.member(member), which_only(*present))
    message = str(caught.value)
    assert message.startswith(f"{missing} not found on PATH: ") and fix in message
    assert "\n" not in message


def test_require_binary_unknown_name() -> None:
    with pytest.raises(MissingToolError, match="frobnicate not found on PATH: install "
                                               "frobnicate"):
        require_binary("frobnicate", which_only())


def test_external_member_has_no_cluster(fed: Federation, recorder: RecordingRunner) -> None:
    with pytest.raises(UsageError, match="external"):
        find_cluster_tools(fed.member("gesis"), which_only("kubectl"))
    with pytest.raises(UsageError, match="external"), \
            cluster_access(fed, fed.member("gesis"), recorder):
        pass


def test_private_kubeconfig_lifecycle(fed: Federation, recorder: RecordingRunner,
                                      private_tmp: Path) -> None:
    with cluster_access(fed, fed.member("gke"), recorder,
                        ClusterTools("kubectl", gcloud="gcloud")) as access:
        assert access.kubeconfig.exists()
        assert stat.S_IMODE(access.kubeconfig.stat().st_mode) == 0o600
        assert stat.S_IMODE(access.kubeconfig.parent.stat().st_mode) == 0o700
        assert access.kubeconfig.parent.parent == private_tmp
        assert access.kubectl_argv("get", "pods") == [
            "kubectl", "get", "pods", "--kubeconfig", str(access.kubeconfig)]
        (call,) = recorder.calls
        assert call.env == {"KUBECONFIG": str(access.kubeconfig)}
        # tools may add files next to it (locks, caches): they go with the directory
        (access.kubeconfig.parent / "kubeconfig.lock").write_text("")
    assert list(private_tmp.iterdir()) == []


def test_kubeconfig_removed_when_the_body_raises(fed: Federation, recorder: RecordingRunner,
                                                 private_tmp: Path) -> None:
    with pytest.raises(KeyboardInterrupt), cluster_access(
            fed, fed.member("gke"), recorder, ClusterTools("kubectl", gcloud="gcloud")):
        raise KeyboardInterrupt
    assert list(private_tmp.iterdir()) == []


def test_kubeconfig_removed_when_credentials_fail(fed: Federation, recorder: RecordingRunner,
                                                  private_tmp: Path) -> None:
    recorder.answer(["aws"], 255, "", "Unable to locate credentials\n")
    with pytest.raises(Exception, match="exit 255"), cluster_access(
            fed, fed.member("curvenote"), recorder, ClusterTools("kubectl", aws="aws")):
        pass
    assert list(private_tmp.iterdir()) == []


def test_kubeconfig_member_copy_is_private(config_dir: Path, recorder: RecordingRunner,
                                           private_tmp: Path) -> None:
    secret = config_dir / "secrets" / "ovh2-kubeconfig.yml"
    secret.write_text("apiVersion: v1\nkind: Config\n")
    secret.chmod(0o644)  # even a too-open source ends up 0600 in the copy
    fed = load_federation(config_dir)
    with cluster_access(fed, fed.member("ovh2"), recorder) as access:
        assert access.kubeconfig.read_text() == secret.read_text()
        assert stat.S_IMODE(access.kubeconfig.stat().st_mode) == 0o600
        assert access.context is None
    assert recorder.calls == []
    assert list(private_tmp.iterdir()) == []


def test_unreachable_markers() -> None:
    assert is_unreachable("Error: Kubernetes cluster unreachable: Get ...: dial tcp: i/o timeout")
    assert is_unreachable("The connection to the server 1.2.3.4 was refused")
    assert not is_unreachable("Error: UPGRADE FAILED: timed out waiting for the condition")
