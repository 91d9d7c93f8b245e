"""The federation-redirect chart with the real helm: lint, template, schema-valid objects."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from federation_deploy.actions import helm
from federation_deploy.config import CHARTS_DIR, Federation, load_federation
from federation_deploy.errors import ToolError
from federation_deploy.runner import Runner
from federation_deploy.values import manifests
from federation_deploy.values.redirector_config import redirector_config
from federation_deploy.values.render import RenderedRelease, render_member

pytestmark = pytest.mark.helm
CHART = CHARTS_DIR / "federation-redirect"


@pytest.fixture
def fed(config_dir: Path) -> Federation:
    return load_federation(config_dir)


@pytest.fixture
def adapter(helm_binary: str) -> helm.Helm:
    return helm.Helm(Runner(echo=False), executable=helm_binary)


def redirector_release(fed: Federation) -> RenderedRelease:
    (rendered,) = render_member(fed, fed.redirector.member, [fed.redirector.release])
    return rendered


def kubernetes_versions(fed: Federation) -> list[str]:
    return sorted({m.kubernetes_version for m in fed.members.values() if m.kubernetes_version})


def objects(adapter: helm.Helm, rendered: RenderedRelease, kube_version: str = "1.27"
            ) -> dict[str, dict[str, Any]]:
    docs = manifests.parse_manifests(adapter.template(rendered, kube_version=kube_version))
    return {doc["kind"]: doc for doc in docs}


def test_the_redirector_release_is_the_package_chart(fed: Federation) -> None:
    release = fed.member(fed.redirector.member).release(fed.redirector.release)
    assert release.package_chart == CHART
    assert release.version == "0.1.0"
    assert "version: 0.1.0\n" in (CHART / "Chart.yaml").read_text()
    assert (CHART / ".helmignore").is_file()


def test_lint_strict_with_the_rendered_values(fed: Federation, adapter: helm.Helm) -> None:
    rendered = redirector_release(fed)
    for version in kubernetes_versions(fed):
        output = adapter.lint(CHART, rendered.values, kube_version=version)
        assert "1 chart(s) linted, 0 chart(s) failed" in output


def test_every_object_valid_for_every_member_kubernetes_version(fed: Federation,
                                                                adapter: helm.Helm) -> None:
    rendered = redirector_release(fed)
    versions = kubernetes_versions(fed)
    assert versions == ["1.26", "1.27", "1.28"]
    for version in versions:
        text = adapter.template(rendered, kube_version=version)
        docs = manifests.parse_manifests(text)
        schema, note = manifests.schema_version_for(version)
        assert (schema, note) == (version, None)  # shipped with kubernetes-validate: offline
        report = manifests.validate_manifests(docs, schema, rendered.release.namespace)
        assert report.invalid == [] and report.unchecked == []
        assert sorted(d["kind"] for d in docs) == [
            "ConfigMap", "Deployment", "Ingress", "PodDisruptionBudget", "Service"]
        assert report.valid == 5


def test_configmap_holds_the_redirector_config_as_json(fed: Federation,
                                                       adapter: helm.Helm) -> None:
    configmap = objects(adapter, redirector_release(fed))["ConfigMap"]
    assert list(configmap["data"]) == ["config.json"]
    assert json.loads(configmap["data"]["config.json"]) == redirector_config(fed)


def test_deployment_runs_the_redirector_highly_available(fed: Federation,
                                                         adapter: helm.Helm) -> None:
    found = objects(adapter, redirector_release(fed))
    deployment = found["Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]
    # no checksum of the config: the redirector reloads it, a weight change restarts nothing
    assert "annotations" not in pod["metadata"]
    term = pod["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"][
        "matchLabels"]
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["federation-deploy", "redirector", "serve", "--config",
                                    "/etc/federation-redirect/config.json", "--port", "8080"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    # a directory mount (no subPath): the kubelet updates the file in place
    assert mount == {"name": "config", "mountPath": "/etc/federation-redirect", "readOnly": True}
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "config")
    assert volume["configMap"]["name"] == found["ConfigMap"]["metadata"]["name"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True

    pdb = found["PodDisruptionBudget"]
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": spec["selector"][
        "matchLabels"]}}
    service = found["Service"]
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    ingress = found["Ingress"]
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [fed.redirector.host]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [{"hosts": ["mybinder.org"],
                                       "secretName": "federation-redirect-tls"}]


def test_a_weight_change_changes_only_the_configmap(config_dir: Path, edit: Any,
                                                    adapter: helm.Helm) -> None:
    before = objects(adapter, redirector_release(load_federation(config_dir)))
    edit("federation.yaml", "    weight: 15\n", "    weight: 30\n")
    after = objects(adapter, redirector_release(load_federation(config_dir)))
    assert before["ConfigMap"] != after["ConfigMap"]
    assert json.loads(after["ConfigMap"]["data"]["config.json"])["hosts"]["ovh2"]["weight"] == 30
    assert {k: v for k, v in before.items() if k != "ConfigMap"} == \
        {k: v for k, v in after.items() if k != "ConfigMap"}


def test_chart_defaults_and_switches(fed: Federation, adapter: helm.Helm) -> None:
    rendered = redirector_release(fed)
    values = copy.deepcopy(rendered.values)
    values["ingress"] = {"enabled": False}
    values["pdb"] = {"enabled": False}
    values["image"] = {"repository": "federation-deploy", "tag": "ci", "pullPolicy": "Never"}
    values["replicas"] = 3
    changed = RenderedRelease(rendered.member, rendered.release, values)
    found = objects(adapter, changed)
    assert sorted(found) == ["ConfigMap", "Deployment", "Service"]
    container = found["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "federation-deploy:ci"
    assert container["imagePullPolicy"] == "Never"
    assert found["Deployment"]["spec"]["replicas"] == 3


def test_an_ingress_without_hosts_fails_with_a_clear_message(fed: Federation,
                                                            adapter: helm.Helm) -> None:
    rendered = redirector_release(fed)
    values = copy.deepcopy(rendered.values)
    values["ingress"]["hosts"] = []
    with pytest.raises(ToolError) as caught:
        adapter.template(RenderedRelease(rendered.member, rendered.release, values),
                         kube_version="1.27")
    assert "ingress.hosts is empty" in caught.value.stderr


def test_chart_defaults_alone_lint(adapter: helm.Helm) -> None:
    assert "0 chart(s) failed" in adapter.lint(CHART, {"ingress": {"hosts": ["example.org"]}})
