"""Releases stuck in a pending state (issue 26): the decision as data, then the deploy with a
recorded helm whose history shows a pending revision: refused without --recover (nothing
upgraded, the error says how), recovered with it (rollback or uninstall, then the upgrade)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from federation_deploy.actions.helm import HistoryEntry
from federation_deploy.actions.kube_auth import ClusterTools
from federation_deploy.commands import deploy as pipeline
from federation_deploy.commands.deploy_recover import stuck_message, stuck_revision
from federation_deploy.config import Federation, load_federation
from federation_deploy.errors import VerificationError
from tests.commands.test_deploy import healthy
from tests.helpers.recording import RecordingRunner

GCP_TOOLS = ClusterTools(kubectl="kubectl", gcloud="gcloud")


def history(*statuses: str) -> list[HistoryEntry]:
    return [HistoryEntry(i + 1, status) for i, status in enumerate(statuses)]


@pytest.fixture
def fed(config_dir: Path) -> Federation:
    return load_federation(config_dir)


def test_only_a_pending_latest_revision_is_stuck(fed: Federation) -> None:
    release = fed.members["gke"].release("binderhub")
    assert stuck_revision(release, []) is None
    assert stuck_revision(release, history("superseded", "deployed")) is None
    assert stuck_revision(release, history("deployed", "failed")) is None
    # an old pending revision under a deployed one: helm upgrades that
    assert stuck_revision(release, history("pending-upgrade", "deployed")) is None
    stuck = stuck_revision(release, history("superseded", "deployed", "pending-upgrade"))
    assert stuck is not None and (stuck.revision, stuck.status, stuck.back_to) == (
        3, "pending-upgrade", 2)
    assert stuck.helm_command() == "helm rollback binderhub 2 --namespace prod"
    rolling = stuck_revision(release, history("superseded", "superseded", "pending-rollback"))
    assert rolling is not None and rolling.back_to == 2
    never = stuck_revision(release, history("pending-install"))
    assert never is not None and never.back_to is None
    assert never.helm_command() == "helm uninstall binderhub --namespace prod"


def test_the_message_says_exactly_what_and_how(fed: Federation) -> None:
    release = fed.members["gke"].release("binderhub")
    stuck = stuck_revision(release, history("deployed", "pending-upgrade"))
    assert stuck is not None
    assert stuck_message("gke", [stuck]) == (
        "release binderhub (namespace prod) is stuck in pending-upgrade at revision 2: helm "
        "refuses to upgrade it (another operation is in progress: a deploy was interrupted, "
        "like a cancelled CD run)\n"
        "nothing was upgraded. Recover with `federation-deploy deploy gke --recover` "
        "(binderhub: roll back to revision 1 (the last deployed), then upgrade), or by hand: "
        "`helm rollback binderhub 1 --namespace prod`, then deploy again")


def pending(recorder: RecordingRunner, name: str, *statuses: str) -> None:
    recorder.answer(["helm", "history", name], out=json.dumps([
        {"revision": i + 1, "status": s, "chart": f"{name}-1.0.0", "description": "x"}
        for i, s in enumerate(statuses)]))


def run_deploy(fed: Federation, recorder: RecordingRunner, *, recover: bool,
               said: list[str]) -> pipeline.DeployReport:
    return pipeline.deploy_member(fed, fed.members["gke"], recorder, helm_executable="helm",
                                  tools=GCP_TOOLS, verify_fetch=healthy, sleep=lambda _s: None,
                                  recover=recover, progress=said.append)


def helm_words(recorder: RecordingRunner) -> list[list[str]]:
    return [c.words[1:4] for c in recorder.calls
            if c.tool == "helm" and c.words[1] in ("history", "rollback", "uninstall",
                                                   "upgrade")]


def test_without_recover_the_deploy_stops_before_any_upgrade(
        fed: Federation, recorder: RecordingRunner, private_tmp: Path) -> None:
    pending(recorder, "binderhub", "superseded", "deployed", "pending-upgrade")
    with pytest.raises(VerificationError) as raised:
        run_deploy(fed, recorder, recover=False, said=[])
    message = str(raised.value)
    assert message.startswith("stage 'releases' failed: release binderhub (namespace prod) "
                              "is stuck in pending-upgrade at revision 3")
    assert "`federation-deploy deploy gke --recover`" in message
    assert "`helm rollback binderhub 2 --namespace prod`" in message
    assert not any(c.words[1] in ("upgrade", "rollback", "uninstall") for c in recorder.calls
                   if c.tool == "helm")
    assert list(private_tmp.iterdir()) == []  # the private kubeconfig is gone all the same


def test_the_suggested_command_keeps_the_persons_options(
        fed: Federation, recorder: RecordingRunner, private_tmp: Path) -> None:
    pending(recorder, "binderhub", "deployed", "pending-upgrade")
    with pytest.raises(VerificationError) as raised:
        pipeline.deploy_member(fed, fed.members["gke"], recorder, helm_executable="helm",
                               tools=GCP_TOOLS, verify_fetch=healthy, sleep=lambda _s: None,
                               releases=["binderhub"], timeout="20m")
    assert ("`federation-deploy deploy gke --release binderhub --timeout 20m --recover`"
            in str(raised.value))


def test_recover_rolls_back_to_the_last_deployed_then_upgrades(
        fed: Federation, recorder: RecordingRunner, private_tmp: Path) -> None:
    pending(recorder, "binderhub", "superseded", "deployed", "pending-upgrade")
    said: list[str] = []
    report = run_deploy(fed, recorder, recover=True, said=said)
    words = helm_words(recorder)
    rollback = words.index(["rollback", "binderhub", "2"])
    # every history read first, the rollback before the first upgrade, then all upgrades
    assert [w[0] for w in words[:rollback]] == ["history"] * 4
    assert [w[:2] for w in words[rollback + 1:]] == [
        ["upgrade", "cert-manager"], ["upgrade", "ingress-nginx"], ["upgrade", "binderhub"],
        ["upgrade", "federation-redirect"]]
    call = next(c for c in recorder.calls if c.words[1:2] == ["rollback"])
    assert "--wait" in call.words and "--cleanup-on-fail" in call.words
    assert call.words[call.words.index("--namespace") + 1] == "prod"
    plan = said.index("stage releases: --recover: release binderhub (namespace prod) is stuck "
                      "in pending-upgrade at revision 3: roll back to revision 2 (the last "
                      "deployed), then upgrade")
    assert said[plan + 1] == "stage releases: --recover: binderhub rolled back to revision 2"
    assert [r.name for r in report.releases][-2:] == ["binderhub", "federation-redirect"]


def test_recover_uninstalls_a_release_never_deployed(
        fed: Federation, recorder: RecordingRunner, private_tmp: Path) -> None:
    pending(recorder, "cert-manager", "pending-install")
    said: list[str] = []
    run_deploy(fed, recorder, recover=True, said=said)
    words = helm_words(recorder)
    assert words.index(["uninstall", "cert-manager", "--timeout"]) < words.index(
        ["upgrade", "cert-manager", "cert-manager"])
    # said up front, before it is done
    assert said.index("stage releases: --recover: release cert-manager (namespace "
                      "cert-manager) is stuck in pending-install at revision 1: uninstall it "
                      "(no revision was ever deployed), then install it again") < said.index(
        "stage releases: --recover: cert-manager uninstalled")
