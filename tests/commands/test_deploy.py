"""The deploy sequence recorded under pyhelm3: exact argv, order, stops, temp files gone."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from federation_deploy.actions import helm
from federation_deploy.actions.kube_auth import ClusterTools
from federation_deploy.commands import deploy as pipeline
from federation_deploy.commands import diff as diff_command
from federation_deploy.config import CHARTS_DIR, Federation, load_federation
from federation_deploy.errors import (
    FederationDeployError,
    MissingToolError,
    ToolError,
    UsageError,
    VerificationError,
    WeightsConflict,
)
from federation_deploy.health.probe import HttpAnswer, Retry
from federation_deploy.traffic import publish
from federation_deploy.values.redirector_config import redirector_config
from federation_deploy.values.render import render_member
from tests.helpers.pins import pinned
from tests.helpers.recording import RecordingRunner

CHART = str(CHARTS_DIR / "federation-redirect")
CERT_MANAGER, INGRESS_NGINX, BINDERHUB = (
    pinned(c) for c in ("cert-manager", "ingress-nginx", "binderhub"))
GCP_TOOLS = ClusterTools(kubectl="kubectl", gcloud="gcloud")
AWS_TOOLS = ClusterTools(kubectl="kubectl", aws="aws")
KUBE_TOOLS = ClusterTools(kubectl="kubectl")


def healthy(url: str, timeout: float) -> HttpAnswer:
    if url.endswith("/health"):
        return HttpAnswer(200, json.dumps({"ok": True, "checks": [{"service": "Hub", "ok": True}]}))
    return HttpAnswer(200, json.dumps({"binderhub": BINDERHUB}))


@pytest.fixture
def fed(config_dir: Path) -> Federation:
    return load_federation(config_dir)


def deploy(fed: Federation, member: str, runner: RecordingRunner, **kwargs: Any
           ) -> pipeline.DeployReport:
    kwargs.setdefault("tools", GCP_TOOLS)
    return pipeline.deploy_member(fed, pipeline.require_deployable(fed, member), runner,
                              helm_executable="helm",
                              verify_fetch=kwargs.pop("verify_fetch", healthy),
                              sleep=lambda _s: None, **kwargs)


def kube_flags(runner: RecordingRunner) -> list[str]:
    gcloud = next(c for c in runner.calls if c.tool == "gcloud")
    assert gcloud.env is not None
    return ["--kubeconfig", gcloud.env["KUBECONFIG"]]


def test_gke_deploy_exact_sequence(fed: Federation, recorder: RecordingRunner,
                                   private_tmp: Path) -> None:
    report = deploy(fed, "gke", recorder)
    kc = kube_flags(recorder)
    kubeconfig = kc[1]
    assert Path(kubeconfig).parent.parent == private_tmp

    expected: list[list[str]] = [
        ["helm", "version", "--short"],
        ["gcloud", "container", "clusters", "get-credentials", "prod", "--project",
         "binderhub-288415", "--location", "us-central1", "--quiet"],
        ["kubectl", "get", "--raw", "/version", "--request-timeout=30s", *kc],
        # gke runs the redirector: the weights it serves are read before any upgrade
        ["helm", "get", "values", "federation-redirect", "--namespace", "federation-redirect",
         "--output", "json", *kc],
        ["helm", "show", "chart", "cert-manager", "--repo", "https://charts.jetstack.io",
         "--version", CERT_MANAGER, *kc],
        ["helm", "show", "chart", "ingress-nginx", "--repo",
         "https://kubernetes.github.io/ingress-nginx", "--version", INGRESS_NGINX, *kc],
        ["helm", "show", "chart", "binderhub", "--repo", "https://jupyterhub.github.io/helm-chart/",
         "--version", BINDERHUB, *kc],
        ["helm", "show", "chart", CHART, *kc],
    ]
    # every release's history, before the first upgrade: a pending one stops the deploy
    expected += [["helm", "history", name, "--output", "json", "--max", "256", "--namespace",
                  ns, *kc]
                 for name, ns in (("cert-manager", "cert-manager"),
                                  ("ingress-nginx", "ingress-nginx"), ("binderhub", "prod"),
                                  ("federation-redirect", "federation-redirect"))]
    upgrade = ["--history-max", "10", "--install", "--output", "json", "--timeout", "10m",
               "--values", "-", "--atomic", "--create-namespace"]
    wait = ["--wait", "--wait-for-jobs"]
    expected += [
        # pyhelm3 passes the repo through pydantic's HttpUrl, which adds a trailing slash
        ["helm", "upgrade", "cert-manager", "cert-manager", *upgrade, "--namespace",
         "cert-manager", "--repo", "https://charts.jetstack.io/", "--version", CERT_MANAGER,
         *wait, *kc],
        ["helm", "upgrade", "ingress-nginx", "ingress-nginx", *upgrade, "--namespace",
         "ingress-nginx", "--repo", "https://kubernetes.github.io/ingress-nginx", "--version",
         INGRESS_NGINX, *wait, *kc],
        ["helm", "upgrade", "binderhub", "binderhub", *upgrade, "--namespace", "prod", "--repo",
         "https://jupyterhub.github.io/helm-chart/", "--version",
         BINDERHUB, *wait, *kc],
        ["helm", "upgrade", "federation-redirect", CHART, *upgrade, "--namespace",
         "federation-redirect", "--version", "0.1.0", *wait, *kc],
    ]
    for ns in ("cert-manager", "ingress-nginx", "prod", "federation-redirect"):
        expected += [
            ["kubectl", "get", "deployments,daemonsets", "--namespace", ns, "--output", "name",
             *kc],
            ["kubectl", "rollout", "status", f"deployment.apps/{ns}-web", "--namespace", ns,
             "--timeout=10m", *kc],
            ["kubectl", "rollout", "status", f"daemonset.apps/{ns}-agent", "--namespace", ns,
             "--timeout=10m", *kc],
        ]
    assert recorder.words() == expected

    # values travel on stdin as JSON, exactly the rendered ones; never in a file
    rendered = {r.release.name: r.values for r in render_member(fed, "gke")}
    upgrades = [c for c in recorder.calls if c.words[1] == "upgrade"]
    assert [json.loads(c.input or "") for c in upgrades] == list(rendered.values())
    # every cluster command used the private kubeconfig while it existed, mode 0600
    assert {c.kubeconfig_mode for c in recorder.calls if c.tool != "helm" or
            c.words[1] not in ("version",)} == {0o600}
    # helm is told the kubeconfig twice: flag (helm) and env (plugins, exec credentials)
    assert all(c.env == {"KUBECONFIG": kubeconfig} for c in upgrades)
    # and it is gone, with its directory
    assert not Path(kubeconfig).exists()
    assert list(private_tmp.iterdir()) == []

    assert [(r.name, r.revision, r.status) for r in report.releases] == [
        ("cert-manager", 3, "deployed"), ("ingress-nginx", 3, "deployed"),
        ("binderhub", 3, "deployed"), ("federation-redirect", 3, "deployed")]
    assert len(report.workloads) == 8
    assert report.verified is not None and report.verified.versions
    assert report.server_version == "v1.27.16-gke.100"


def test_failing_release_stops_later_stages(fed: Federation, recorder: RecordingRunner,
                                            private_tmp: Path) -> None:
    recorder.answer(["helm", "upgrade", "ingress-nginx"], 1, "",
                    "Error: UPGRADE FAILED: release ingress-nginx failed, and has been rolled "
                    "back due to atomic being set: timed out waiting for the condition\n")
    checked: list[str] = []

    def fetch(url: str, timeout: float) -> HttpAnswer:
        checked.append(url)
        return healthy(url, timeout)

    with pytest.raises(ToolError) as caught:
        deploy(fed, "gke", recorder, verify_fetch=fetch)
    message = caught.value.render()
    assert message.splitlines()[0] == (
        f"stage 'releases' failed: release 'ingress-nginx' (ingress-nginx {INGRESS_NGINX} from "
        "https://kubernetes.github.io/ingress-nginx, namespace ingress-nginx) failed to install "
        "or upgrade; --atomic rolled it back (not attempted: binderhub, federation-redirect)")
    assert "timed out waiting for the condition" in message  # helm's own stderr
    assert caught.value.returncode == 1
    upgraded = [c.words[2] for c in recorder.calls if c.words[1] == "upgrade"]
    assert upgraded == ["cert-manager", "ingress-nginx"]
    assert not any(c.words[1] == "rollout" for c in recorder.calls)
    assert checked == []  # verify never ran
    assert list(private_tmp.iterdir()) == []  # the KUBECONFIG is gone on failure too


def test_unfetchable_chart_stops_before_any_upgrade(fed: Federation, recorder: RecordingRunner,
                                                    private_tmp: Path) -> None:
    recorder.answer(["helm", "show", "chart", "binderhub"], 1, "",
                    'Error: looks like "https://jupyterhub.github.io/helm-chart/" is not a valid '
                    "chart repository or cannot be reached: dial tcp: lookup jupyterhub.github.io:"
                    " no such host\n")
    with pytest.raises(ToolError) as caught:
        deploy(fed, "gke", recorder)
    first = caught.value.render().splitlines()[0]
    assert first.startswith("stage 'releases' failed: cannot fetch chart binderhub "
                            f"{BINDERHUB} from https://jupyterhub.github.io/"
                            "helm-chart/ for release 'binderhub': looks like")
    assert first.endswith("(nothing was deployed)")
    assert not any(c.words[1] == "upgrade" for c in recorder.calls)
    assert list(private_tmp.iterdir()) == []


def test_failed_rollout_names_the_workload_and_skips_verify(
        fed: Federation, recorder: RecordingRunner, private_tmp: Path) -> None:
    recorder.answer(["kubectl", "rollout", "status", "deployment.apps/prod-web"], 1, "",
                    'error: deployment "prod-web" exceeded its progress deadline\n')
    checked: list[str] = []
    with pytest.raises(ToolError) as caught:
        deploy(fed, "gke", recorder,
               verify_fetch=lambda url, t: checked.append(url) or healthy(url, t))
    message = caught.value.render()
    assert message.startswith("stage 'rollout' failed: deployment.apps/prod-web in namespace "
                              "'prod' did not finish rolling out")
    assert "exceeded its progress deadline" in message
    assert checked == []
    assert list(private_tmp.iterdir()) == []


def test_unhealthy_member_fails_verify_after_retries(fed: Federation,
                                                     recorder: RecordingRunner) -> None:
    def sick(url: str, timeout: float) -> HttpAnswer:
        return HttpAnswer(503, json.dumps({"ok": False, "checks": [
            {"service": "Hub", "ok": True}, {"service": "Docker registry", "ok": False}]}))

    with pytest.raises(VerificationError) as caught:
        deploy(fed, "gke", recorder, verify_fetch=sick, retry=Retry(attempts=3, delay=1))
    assert caught.value.stage == "verify"
    assert "stage 'verify' failed: member 'gke': unhealthy" in str(caught.value)
    assert "Docker registry" in str(caught.value)


def test_unreachable_cluster_fails_auth_with_a_hint(fed: Federation, recorder: RecordingRunner,
                                                    private_tmp: Path) -> None:
    recorder.answer(["kubectl", "get", "--raw"], 1, "",
                    "E0101 The connection to the server 35.1.2.3 was refused - did you specify "
                    "the right host or port?\n")
    with pytest.raises(ToolError) as caught:
        deploy(fed, "gke", recorder)
    message = caught.value.render()
    assert message.startswith("stage 'auth' failed: cannot reach the Kubernetes API of member "
                              "'gke'")
    assert "hint: check that the cluster is running and reachable" in message
    assert not any(c.tool == "helm" and c.words[1] != "version" for c in recorder.calls)
    assert list(private_tmp.iterdir()) == []


def test_credentials_failure_names_the_auth_stage(fed: Federation, recorder: RecordingRunner,
                                                  private_tmp: Path) -> None:
    recorder.answer(["gcloud"], 1, "", "ERROR: (gcloud.container.clusters.get-credentials) "
                    "You do not currently have an active account selected.\n")
    with pytest.raises(ToolError) as caught:
        deploy(fed, "gke", recorder)
    message = caught.value.render()
    assert message.startswith("stage 'auth' failed: could not get credentials for member 'gke'")
    assert "no active account" not in message and "active account selected" in message
    assert "gcloud auth login" in message
    assert list(private_tmp.iterdir()) == []


def test_aws_member_with_role(config_dir: Path, edit: Any, recorder: RecordingRunner,
                              private_tmp: Path) -> None:
    edit("federation.yaml", "      region: us-east-2\n",
         "      region: us-east-2\n      role_arn: arn:aws:iam::123456789012:role/deployer\n")
    fed = load_federation(config_dir)
    deploy(fed, "curvenote", recorder, tools=AWS_TOOLS, stages=["auth"])
    aws = recorder.calls[1]
    assert aws.words[:-2] == ["aws", "eks", "update-kubeconfig", "--name", "binderhub",
                              "--region", "us-east-2", "--kubeconfig", aws.env["KUBECONFIG"]
                              if aws.env else ""]
    assert aws.words[-2:] == ["--role-arn", "arn:aws:iam::123456789012:role/deployer"]
    assert aws.kubeconfig_mode == 0o600
    assert recorder.words()[2][:3] == ["kubectl", "get", "--raw"]
    assert len(recorder.calls) == 3  # --stage auth: credentials and the probe, nothing else
    assert list(private_tmp.iterdir()) == []


def test_kubeconfig_member_copies_the_secret_file(config_dir: Path, edit: Any,
                                                  recorder: RecordingRunner,
                                                  private_tmp: Path) -> None:
    edit("federation.yaml", "      kubeconfig: ovh2-kubeconfig.yml\n",
         "      kubeconfig: ovh2-kubeconfig.yml\n      context: ovh2-admin\n")
    secret = config_dir / "secrets" / "ovh2-kubeconfig.yml"
    secret.write_text("apiVersion: v1\nkind: Config\n# the real one\n")
    fed = load_federation(config_dir)
    seen: list[str] = []
    recorder.rules.append(lambda call: seen.append(Path(call.argv[call.argv.index(
        "--kubeconfig") + 1]).read_text()) if "--kubeconfig" in call.argv else None)
    deploy(fed, "ovh2", recorder, tools=KUBE_TOOLS, releases=["binderhub"],
           stages=["releases"])
    assert seen and set(seen) == {secret.read_text()}
    upgrade = next(c for c in recorder.calls if c.words[1] == "upgrade")
    assert upgrade.words[-4:-2] == ["--kubeconfig", upgrade.words[-3]]
    assert upgrade.words[-2:] == ["--kube-context", "ovh2-admin"]
    rollout = [c for c in recorder.calls if c.tool == "kubectl"]
    assert all(c.words[-2:] == ["--context", "ovh2-admin"] for c in rollout)
    assert [c.words[2] for c in recorder.calls if c.words[1] == "upgrade"] == ["binderhub"]
    assert list(private_tmp.iterdir()) == []


def test_missing_kubeconfig_secret_is_one_clear_line(fed: Federation,
                                                     recorder: RecordingRunner,
                                                     private_tmp: Path) -> None:
    with pytest.raises(FederationDeployError) as caught:
        deploy(fed, "ovh2", recorder, tools=KUBE_TOOLS)
    message = str(caught.value)
    assert message.startswith("stage 'auth' failed: member 'ovh2': cannot read its kubeconfig")
    assert "\n" not in message
    assert list(private_tmp.iterdir()) == []


def test_external_member_is_refused(fed: Federation, recorder: RecordingRunner) -> None:
    with pytest.raises(UsageError, match="external .* never deploys it"):
        deploy(fed, "gesis", recorder)
    assert recorder.calls == []


def test_helm_4_is_refused(fed: Federation, recorder: RecordingRunner) -> None:
    recorder.answer(["helm", "version", "--short"], 0, "v4.0.1+g1234\n")
    with pytest.raises(MissingToolError, match=r"helm v4.0.1\+g1234, federation-deploy needs "
                                               r"helm 3.x: .*fetch_helm.py"):
        deploy(fed, "gke", recorder)
    assert len(recorder.calls) == 1


def test_secret_values_are_censored_in_helm_errors(config_dir: Path,
                                                   recorder: RecordingRunner) -> None:
    secrets = config_dir / "secrets" / "values" / "gke.yaml"
    secrets.write_text("binderhub:\n  registry:\n    password: hunter2-very-secret\n")
    fed = load_federation(config_dir)
    recorder.answer(["helm", "upgrade", "binderhub"], 1, "",
                    "Error: cannot log in with password hunter2-very-secret\n")
    with pytest.raises(ToolError) as caught:
        deploy(fed, "gke", recorder)
    assert "hunter2-very-secret" not in caught.value.render()
    assert "password ***" in caught.value.render()
    upgrade = next(c for c in recorder.calls if c.words[1:3] == ["upgrade", "binderhub"])
    assert "hunter2-very-secret" in (upgrade.input or "")  # helm itself gets the real value
    assert all("hunter2" not in " ".join(c.argv) for c in recorder.calls)


def test_stages_are_normalised() -> None:
    assert pipeline.normalise_stages(None) == pipeline.STAGES
    assert pipeline.normalise_stages(["verify", "releases"]) == pipeline.STAGES
    assert pipeline.normalise_stages(["releases"]) == ("auth", "releases", "rollout")
    assert pipeline.normalise_stages(["rollout"]) == ("auth", "rollout")
    with pytest.raises(UsageError, match="unknown stage"):
        pipeline.normalise_stages(["bogus"])


def test_verify_stage_alone_touches_no_tool(fed: Federation, recorder: RecordingRunner) -> None:
    report = deploy(fed, "gke", recorder, stages=["verify"])
    assert recorder.calls == []
    assert report.verified is not None


def test_deploy_of_only_the_redirector_release(fed: Federation, recorder: RecordingRunner,
                                               private_tmp: Path) -> None:
    """`deploy gke --release federation-redirect --stage releases`: auth, the upgrade (after
    the generation check), rollout."""
    member = pipeline.require_deployable(fed, fed.redirector.member)
    report = pipeline.deploy_member(fed, member, recorder, releases=[fed.redirector.release],
                                    stages=("auth", "releases", "rollout"),
                                    helm_executable="helm", tools=GCP_TOOLS, timeout="5m")
    kc = kube_flags(recorder)
    assert [c.words[1:3] for c in recorder.calls if c.tool == "helm"] == [
        ["version", "--short"], ["get", "values"], ["show", "chart"],
        ["history", "federation-redirect"], ["upgrade", "federation-redirect"]]
    upgrade = next(c for c in recorder.calls if c.words[1] == "upgrade")
    assert upgrade.words == [
        "helm", "upgrade", "federation-redirect", CHART, "--history-max", "10", "--install",
        "--output", "json", "--timeout", "5m", "--values", "-", "--atomic", "--create-namespace",
        "--namespace", "federation-redirect", "--version", "0.1.0", "--wait", "--wait-for-jobs",
        *kc]
    values = json.loads(upgrade.input or "")
    assert values["federationRedirect"]["hosts"]["gke"]["weight"] == 60
    assert [c.words[:3] for c in recorder.calls if c.tool == "kubectl"][1:] == [
        ["kubectl", "get", "deployments,daemonsets"], ["kubectl", "rollout", "status"],
        ["kubectl", "rollout", "status"]]
    assert report.stages == ("auth", "releases", "rollout") and report.verified is None
    assert list(private_tmp.iterdir()) == []


# --------------------------------------------------------------------------------------------
# The weights' generation: a deploy of the redirector never publishes older weights


def deployed_redirector(recorder: RecordingRunner, config: dict[str, Any]) -> None:
    recorder.answer(["helm", "get", "values", "federation-redirect"], 0,
                    json.dumps({"federationRedirect": config}))


def test_deploy_of_the_redirector_refuses_an_older_generation(
    fed: Federation, recorder: RecordingRunner, private_tmp: Path
) -> None:
    # a ramp has taken curvenote to 5% since this commit (generation 0) was made
    newer = redirector_config(fed)
    newer["generation"] = 7
    newer["hosts"]["curvenote"]["weight"] = 5.26316
    deployed_redirector(recorder, newer)
    with pytest.raises(WeightsConflict) as refused:
        deploy(fed, "gke", recorder)
    message = str(refused.value)
    assert "refused to publish generation 0" in message
    assert "helm release federation-redirect on gke: it serves generation 7, newer" in message
    assert "curvenote: 0 here, 5.26316 published" in message
    assert not [c for c in recorder.calls if c.words[1] in ("upgrade", "show")]
    assert list(private_tmp.iterdir()) == []  # the kubeconfig is gone all the same


def test_deploy_of_the_redirector_same_generation(
    fed: Federation, recorder: RecordingRunner, config_dir: Path, edit: Any
) -> None:
    deployed_redirector(recorder, redirector_config(fed))
    deploy(fed, "gke", recorder, stages=["releases"])  # what is served: allowed
    assert [c for c in recorder.calls if c.words[1:3] == ["upgrade", "federation-redirect"]]
    # weights edited by hand without a new generation: the same generation, other weights
    edit("federation.yaml", "weight: 60", "weight: 70")
    recorder.calls.clear()
    with pytest.raises(WeightsConflict, match="already serves generation 0 with other "
                                              r"weights \(gke: 70 here, 60 published\)"):
        deploy(load_federation(config_dir), "gke", recorder, stages=["releases"])
    assert not [c for c in recorder.calls if c.words[1] == "upgrade"]


def test_first_install_of_the_redirector_has_nothing_to_compare(
    fed: Federation, recorder: RecordingRunner
) -> None:
    recorder.answer(["helm", "get", "values"], 1, "", "Error: release: not found\n")
    deploy(fed, "gke", recorder, stages=["releases"])
    assert [c for c in recorder.calls if c.words[1:3] == ["upgrade", "federation-redirect"]]


def test_helm_publish_of_the_ramp_refuses_an_older_generation(
    fed: Federation, recorder: RecordingRunner
) -> None:
    newer = redirector_config(fed)
    newer["generation"] = 3
    deployed_redirector(recorder, newer)
    with pytest.raises(WeightsConflict, match="serves generation 3, newer"):
        publish.upgrade_redirector_release(fed, recorder, helm_executable="helm", tools=GCP_TOOLS)
    kc = kube_flags(recorder)
    assert recorder.words() == [
        ["helm", "version", "--short"],
        ["gcloud", "container", "clusters", "get-credentials", "prod", "--project",
         "binderhub-288415", "--location", "us-central1", "--quiet"],
        ["kubectl", "get", "--raw", "/version", "--request-timeout=30s", *kc],
        ["helm", "get", "values", "federation-redirect", "--namespace", "federation-redirect",
         "--output", "json", *kc],
    ]
    # and what it serves now, read the same way (the ramp's resume compares with it)
    recorder.calls.clear()
    published = publish.deployed_redirector_weights(fed, recorder, helm_executable="helm",
                                                 tools=GCP_TOOLS)
    assert published is not None and published.generation == 3
    assert published.weights["gke"] == 60


# --------------------------------------------------------------------------------------------
# diff


def test_diff_with_the_plugin(fed: Federation, recorder: RecordingRunner,
                              private_tmp: Path) -> None:
    recorder.answer(["helm", "plugin", "list"], 0,
                    "NAME\tVERSION\tDESCRIPTION\ndiff\t3.9.14\tPreview helm upgrade changes\n")
    recorder.answer(["helm", "diff", "upgrade", "federation-redirect"], 0,
                    "federation-redirect, federation-redirect, ConfigMap (v1) has changed:\n"
                    '-    {"hosts": 1}\n+    {"hosts": 2}\n')
    report = diff_command.diff_member(fed, fed.member("gke"), recorder, releases=["cert-manager",
                                                              "federation-redirect"],
                              helm_executable="helm", tools=GCP_TOOLS)
    kc = kube_flags(recorder)
    assert report.method == "helm-diff" and report.changed
    assert [r.changed for r in report.releases] == [False, True]
    diffs = [c for c in recorder.calls if c.words[1] == "diff"]
    assert diffs[1].words == [
        "helm", "diff", "upgrade", "federation-redirect", CHART, "--allow-unreleased",
        "--no-color", "--normalize-manifests", "--disable-openapi-validation", "--values", "-",
        "--context", "3", "--namespace", "federation-redirect", *kc]
    assert diffs[0].words[-6:-2] == ["--repo", "https://charts.jetstack.io", "--version",
                                     CERT_MANAGER]
    assert list(private_tmp.iterdir()) == []


DEPLOYED = """---
# Source: x/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  config.json: '{"weight": 1}'
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
data:
  password: aHVudGVyMg==
"""


def test_diff_without_the_plugin_compares_manifests(fed: Federation, recorder: RecordingRunner
                                                    ) -> None:
    rendered = DEPLOYED.replace('{"weight": 1}', '{"weight": 2}').replace("aHVudGVyMg==",
                                                                          "bmV3c2VjcmV0")
    recorder.answer(["helm", "template", "federation-redirect"], 0, rendered)
    recorder.answer(["helm", "get", "manifest", "federation-redirect"], 0, DEPLOYED)
    recorder.answer(["helm", "template", "cert-manager"], 0, DEPLOYED)
    recorder.answer(["helm", "get", "manifest", "cert-manager"], 0, DEPLOYED)
    report = diff_command.diff_member(fed, fed.member("gke"), recorder,
                              releases=["cert-manager", "federation-redirect"],
                              helm_executable="helm", tools=GCP_TOOLS)
    assert report.method == "manifests"
    same, changed = report.releases
    assert not same.changed and changed.changed
    assert '-  config.json: \'{"weight": 1}\'' in changed.text
    assert '+  config.json: \'{"weight": 2}\'' in changed.text
    assert "aHVudGVyMg==" not in changed.text and "bmV3c2VjcmV0" not in changed.text
    assert "-  password: <redacted>\n" in changed.text  # said changed, never shown
    assert "+  password: <redacted> (changed)\n" in changed.text
    assert "sha256" not in changed.text
    template = next(c for c in recorder.calls if c.words[1:3] == ["template",
                                                                  "federation-redirect"])
    assert "--skip-crds" in template.words and "--is-upgrade" in template.words
    assert template.words[template.words.index("--kube-version") + 1] == "1.27"


def test_diff_of_a_release_not_installed_shows_everything_new(fed: Federation,
                                                              recorder: RecordingRunner) -> None:
    recorder.answer(["helm", "template"], 0, DEPLOYED)
    recorder.answer(["helm", "get", "manifest"], 1, "", "Error: release: not found\n")
    report = diff_command.diff_member(fed, fed.member("gke"), recorder,
                                  releases=["federation-redirect"],
                                  helm_executable="helm", tools=GCP_TOOLS)
    text = report.releases[0].text
    assert "--- deployed: (none)" in text
    assert "+++ rendered: ConfigMap federation-redirect/web" in text


# --------------------------------------------------------------------------------------------
# binaries


def test_find_helm_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "my-helm"
    mine.write_text("#!/bin/sh\n")
    mine.chmod(0o755)
    assert helm.find_helm({"FEDERATION_DEPLOY_HELM": str(mine)}, which=lambda n: None) == str(mine)
    assert helm.find_helm({}, which=lambda n: f"/usr/bin/{n}") == "/usr/bin/helm"
    monkeypatch.setattr(helm, "CHECKOUT_HELM", mine)
    assert helm.find_helm({}, which=lambda n: None) == str(mine)
    monkeypatch.setattr(helm, "CHECKOUT_HELM", tmp_path / "absent")
    with pytest.raises(MissingToolError) as caught:
        helm.find_helm({}, which=lambda n: None)
    assert "helm not found" in str(caught.value) and "scripts/fetch_helm.py" in str(caught.value)
    with pytest.raises(MissingToolError, match="FEDERATION_DEPLOY_HELM=/nope is not an executable"):
        helm.find_helm({"FEDERATION_DEPLOY_HELM": "/nope"}, which=lambda n: None)


def test_helm_version_parsing() -> None:
    assert str(helm.parse_helm_version("helm", "v3.17.2+gcc0bbbd\n")) == "3.17.2+gcc0bbbd"
    with pytest.raises(MissingToolError, match="needs helm 3.x"):
        helm.parse_helm_version("helm", "v2.17.0+ga690bad")
    with pytest.raises(MissingToolError, match="not a helm we understand"):
        helm.parse_helm_version("helm", "Client: &version.Version{}")


def test_helm_that_does_not_run(recorder: RecordingRunner) -> None:
    recorder.answer(["helm", "version"], 126, "", "permission denied\n")
    with pytest.raises(MissingToolError, match="does not run .*permission denied"):
        helm.Helm(recorder, executable="helm")


def test_default_timeout_agrees_with_the_cli() -> None:
    from federation_deploy.commands import deploy as commands

    assert commands.DEFAULT_TIMEOUT == helm.DEFAULT_TIMEOUT


def test_only_the_adapter_imports_pyhelm3() -> None:
    package = Path(helm.__file__).resolve().parents[1]
    importers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                       if "import pyhelm3" in p.read_text() or "from pyhelm3" in p.read_text())
    assert importers == [os.path.join("actions", "helm.py")]


# issue 29 item 1: after a rotation, the deployed side held the OLD secret, printed in clear
ROTATED_DEPLOYED = """---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  apikey: OLD-LIVE-SECRET-1234
  OLD-LIVE-SECRET-1234: used as a key
  plain: same
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
data:
  password: T0xELUxJVkU=
  same: c2FtZQ==
stringData:
  token: OLD-TOKEN-abcdef
"""


@pytest.mark.parametrize("plugin", [False, True])
def test_diff_after_a_rotation_hides_the_old_live_secret_by_key_path(
        config_dir: Path, recorder: RecordingRunner, plugin: bool) -> None:
    (config_dir / "secrets" / "values" / "gke.yaml").write_text(
        "federation-redirect:\n  apikey: NEW-SECRET-5678\n")
    fed = load_federation(config_dir)
    rendered = (ROTATED_DEPLOYED.replace("OLD-LIVE-SECRET-1234", "NEW-SECRET-5678")
                .replace("T0xELUxJVkU=", "TkVXLVNFQ1JFVA==")
                .replace("OLD-TOKEN-abcdef", "NEW-TOKEN-abcdef"))
    # what the release was deployed with: the same key path, the old value
    recorder.answer(["helm", "get", "values", "federation-redirect"], 0,
                    '{"apikey": "OLD-LIVE-SECRET-1234", "replicas": 2}')
    if plugin:
        recorder.answer(["helm", "plugin", "list"], 0, "NAME\tVERSION\ndiff\t3.9.14\tx\n")
        recorder.answer(["helm", "diff", "upgrade", "federation-redirect"], 0,
                        "web, ConfigMap (v1) has changed:\n"
                        "-   apikey: OLD-LIVE-SECRET-1234\n+   apikey: NEW-SECRET-5678\n")
    recorder.answer(["helm", "template", "federation-redirect"], 0, rendered)
    recorder.answer(["helm", "get", "manifest", "federation-redirect"], 0, ROTATED_DEPLOYED)
    report = diff_command.diff_member(fed, fed.member("gke"), recorder,
                                      releases=["federation-redirect"],
                                      helm_executable="helm", tools=GCP_TOOLS)
    text = report.releases[0].text
    assert report.releases[0].changed
    for secret in ("OLD-LIVE-SECRET-1234", "NEW-SECRET-5678", "T0xELUxJVkU=", "OLD-LIVE",
                   "TkVXLVNFQ1JFVA==", "OLD-TOKEN-abcdef", "NEW-TOKEN-abcdef", "sha256"):
        assert secret not in text, secret
    if plugin:
        return
    assert "-  apikey: <redacted>\n" in text and "+  apikey: <redacted> (changed)\n" in text
    assert "-  password: <redacted>\n" in text and "+  password: <redacted> (changed)\n" in text
    assert "token: <redacted> (changed)" in text
    # the secret used as a mapping key: hidden, and said changed
    assert "<redacted> key 1: used as a key" in text
    assert "<redacted> key 1 (changed): used as a key" in text
    # an unchanged Secret value and a plain value are no diff line
    assert not any(line.startswith(("+", "-")) and "same" in line
                   for line in text.splitlines())
