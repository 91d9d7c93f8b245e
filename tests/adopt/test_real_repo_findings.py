"""What a maintainer trying the real mybinder.org-deploy found (issue 12 follow-up), each on
the fixture repository with real helm and real processes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from federation_deploy.adopt.federation import adopt_repository
from federation_deploy.errors import ConfigError
from tests.adopt.conftest import HelmRepo
from tests.adopt.test_adopted_repo import HookRunner, add_hooks, deploy_recorded, invoke
from tests.helpers.recording import RecordingRunner

# a network-ban script as deploy.py runs them: it writes a values file under config/common/
# (git-ignored in the real repository) and rewrites one the loader had already parsed
BANS = ("import pathlib; pathlib.Path('config/common/zz-datacenter-bans.yaml').write_text("
        "'binderhub:\\n  extraConfig:\\n    bans: written-by-the-hook\\n'); "
        "pathlib.Path('config/common/20-ingress.yaml').write_text("
        "'binderhub:\\n  replicaCount: 7\\n'); print('bans updated')")


def test_adopt_keeps_the_common_globs_when_the_directory_is_absent(deploy_repo: Path) -> None:
    shutil.rmtree(deploy_repo / "config" / "common")
    releases = adopt_repository(deploy_repo).document["members"]["staging"]["releases"]
    values = releases[-1]["values"]
    assert values[:2] == [
        {"path": "config/common/*.yaml", "optional": True},
        {"path": "secrets/config/common/*.yaml", "secret": True, "optional": True}]


def test_values_written_by_a_hook_after_auth_reach_helm(adopted: Path) -> None:
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "network-bans", "after": "auth", "argv": [sys.executable, "-c", BANS]}])
    assert not (adopted / "config" / "common" / "zz-datacenter-bans.yaml").exists()
    runner = HookRunner()
    messages: list[str] = []
    deploy_recorded(adopted, "hetzner-2i2c", runner, progress=messages.append)
    words = [c.words for c in runner.calls]
    hook = next(i for i, w in enumerate(words) if w[1] == "-c")
    upgrade = next(c for c in runner.calls
                   if c.words[1] == "upgrade" and c.words[3].endswith("/mybinder"))
    assert words.index(upgrade.words) > hook
    values = json.loads(upgrade.input or "")
    assert values["binderhub"]["extraConfig"]["bans"] == "written-by-the-hook"
    assert values["binderhub"]["replicaCount"] == 7  # the rewritten file, not the parsed one
    assert "stage releases: values rendered again with what the hooks after auth wrote" \
        in messages


def test_adopt_and_validate_note_a_chart_directory_without_chart_lock(adopted: Path) -> None:
    assert "no Chart.lock" not in invoke(adopted, "validate").stderr
    assert not any("no Chart.lock" in n for n in adopt_repository(adopted).notes)
    # as the real repository has it: mybinder*/Chart.lock is git-ignored
    (adopted / "mybinder" / "Chart.lock").unlink()
    notes = adopt_repository(adopted).notes
    assert any(n.startswith("chart directory ./mybinder has dependencies but no Chart.lock")
               for n in notes), notes
    result = invoke(adopted, "validate")
    assert result.exit_code == 0, result.output  # a note, not an error
    assert "\nnote: chart directory " in "\n" + result.stderr
    assert "mybinder has dependencies but no Chart.lock" in result.stderr


def retire_hosts(repo: Path) -> None:
    """config/prod.yaml routes to a host federation.yaml does not know, and the chart's
    values.yaml ships a default host: neither may go live."""
    prod = repo / "config" / "prod.yaml"
    data = yaml.safe_load(prod.read_text())
    data["federationRedirect"]["hosts"]["retired"] = {
        "url": "https://retired.example.org", "weight": 5, "prime": False}
    prod.write_text(yaml.safe_dump(data, sort_keys=False))
    chart = repo / "mybinder" / "values.yaml"
    values = yaml.safe_load(chart.read_text())
    values["federationRedirect"]["hosts"] = {"chart-default": {
        "url": "https://default.example.org", "weight": 1}}
    chart.write_text(yaml.safe_dump(values, sort_keys=False))


def test_the_generated_redirector_block_replaces_the_hosts_below_it(
    adopted: Path, helm_repo: HelmRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    retire_hosts(adopted)
    result = invoke(adopted, "render", "prod", "--release", "mybinder", "--without-secrets")
    assert result.exit_code == 0, result.output
    hosts = yaml.safe_load(result.stdout)["federationRedirect"]["hosts"]
    # the files' stale host is merged away here; the chart's default must reach helm as null
    assert "retired" not in hosts and hosts["chart-default"] is None
    assert {n for n, h in hosts.items() if h} == {"hetzner-2i2c", "hetzner-gesis", "bids-ovh"}
    # what helm makes of it: the chart's redirector config holds only federation.yaml's hosts
    monkeypatch.setenv("FEDERATION_DEPLOY_HELM", helm_repo.helm)
    result = invoke(adopted, "deploy", "prod", "--dry-run", "--without-secrets",
                    "--release", "mybinder")
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    config = json.loads(next(d for d in docs if d["metadata"]["name"] ==
                             "federation-redirect")["data"]["config.json"])
    assert set(config["hosts"]) == {"hetzner-2i2c", "hetzner-gesis", "bids-ovh"}
    # --explain says where the generated block comes from, bracketed once
    result = invoke(adopted, "render", "prod", "--release", "mybinder", "--without-secrets",
                    "--explain", "federationRedirect.hosts.retired")
    assert "federation.yaml (generated redirector config): deleted (null)" in result.output
    assert "(generated) (generated" not in result.output


def test_validate_and_adopt_say_where_redirector_hosts_are_still_set(adopted: Path) -> None:
    lines = (adopted / "config" / "prod.yaml").read_text().splitlines()
    block = lines.index("federationRedirect:")
    line = next(i for i, text in enumerate(lines[block:], block + 1) if text == "  hosts:")
    result = invoke(adopted, "validate")
    assert result.exit_code == 0, result.output
    expected = (f"config/prod.yaml:{line}: federationRedirect.hosts (hetzner-2i2c, "
                "hetzner-gesis, bids-ovh; weights of hetzner-2i2c, hetzner-gesis, bids-ovh) is "
                "still set: weights live in federation.yaml now: delete this block")
    assert expected in result.stderr
    assert any(n.startswith(expected) for n in adopt_repository(adopted).notes)
    # deleted as advised: no more warning, and the render is the same
    before = invoke(adopted, "render", "prod", "--release", "mybinder", "--without-secrets")
    prod = adopted / "config" / "prod.yaml"
    data = yaml.safe_load(prod.read_text())
    del data["federationRedirect"]["hosts"]
    prod.write_text(yaml.safe_dump(data, sort_keys=False))
    assert "federationRedirect.hosts" not in invoke(adopted, "validate").stderr
    after = invoke(adopted, "render", "prod", "--release", "mybinder", "--without-secrets")
    assert yaml.safe_load(before.stdout) == yaml.safe_load(after.stdout)


class GcloudRunner(RecordingRunner):
    """Records every command; gcloud's get-credentials writes a GKE kubeconfig (its exec
    plugin entry) to $KUBECONFIG, as the real one does, and the gcloud config directory's
    mode is noted when the key is activated."""

    def __init__(self) -> None:
        super().__init__()
        self.config_modes: list[int] = []
        self.kubeconfigs: list[Any] = []  # what kubectl was given, read when it ran

    def run(self, argv: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        env = kwargs.get("env") or {}
        words = [Path(argv[0]).name, *argv[1:]]
        if words[:3] == ["gcloud", "auth", "activate-service-account"]:
            self.config_modes.append(stat.S_IMODE(os.stat(env["CLOUDSDK_CONFIG"]).st_mode))
        if words[:4] == ["gcloud", "container", "clusters", "get-credentials"]:
            Path(env["KUBECONFIG"]).write_text(yaml.safe_dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "gke",
                "users": [{"name": "gke", "user": {"exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "gke-gcloud-auth-plugin"}}}]}))
        if words[0] == "kubectl" and "--kubeconfig" in words:
            path = Path(words[words.index("--kubeconfig") + 1])
            self.kubeconfigs.append(yaml.safe_load(path.read_text()))
        return super().run(argv, **kwargs)


def test_adopt_maps_the_gcloud_key_and_auth_activates_it_privately(adopted: Path) -> None:
    prod = yaml.safe_load((adopted / "federation.yaml").read_text())["members"]["prod"]
    assert prod["cluster"]["key_file"] == "secrets/gke-auth-key-prod.json"  # from deploy.py
    key = adopted / "secrets" / "gke-auth-key-prod.json"
    key.write_text('{"type": "service_account"}\n')
    runner = GcloudRunner()
    deploy_recorded(adopted, "prod", runner, stages=["auth"])
    calls = [c for c in runner.calls if c.tool == "gcloud"]
    activate, credentials = calls
    config = activate.env["CLOUDSDK_CONFIG"] if activate.env else ""
    assert activate.words == ["gcloud", "auth", "activate-service-account",
                              f"--key-file={adopted / 'secrets' / 'gke-auth-key-prod.json'}",
                              "--quiet"]
    assert credentials.words[:5] == ["gcloud", "container", "clusters", "get-credentials",
                                     "prod"]
    assert credentials.env and credentials.env["CLOUDSDK_CONFIG"] == config
    assert runner.config_modes == [0o700]
    assert Path(config).parent == Path(credentials.env["KUBECONFIG"]).parent
    assert not Path(config).exists()  # removed with the run's kubeconfig
    # kubectl (and helm, and hooks) reach GKE through the auth plugin, which asks gcloud:
    # the kubeconfig they got names the run's gcloud config
    probe = next(c for c in runner.calls if c.words[:3] == ["kubectl", "get", "--raw"])
    assert probe.kubeconfig_mode == 0o600
    (user,) = runner.kubeconfigs[0]["users"]
    assert user["user"]["exec"]["env"] == [{"name": "CLOUDSDK_CONFIG", "value": config}]
    # a locked key stops the deploy before gcloud runs, naming it: exit 2
    key.write_bytes(b"\x00GITCRYPT\x00" + os.urandom(16))
    result = invoke(adopted, "deploy", "prod", "--stage", "auth", "--yes")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        "error: locked by git-crypt: secrets/gke-auth-key-prod.json; run git-crypt unlock")
    # the pipeline called without the CLI's check stops at auth all the same, naming the key
    runner = GcloudRunner()
    with pytest.raises(ConfigError, match="members.prod.cluster.key_file: locked with "
                                          "git-crypt: run git-crypt unlock"):
        deploy_recorded(adopted, "prod", runner, stages=["auth"])
    assert not [c for c in runner.calls if c.tool == "gcloud"]


def test_the_kubeconfig_names_the_private_gcloud_config(tmp_path: Path) -> None:
    from federation_deploy.actions.kube_auth import _pin_gcloud_config

    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump({"users": [
        {"name": "gke", "user": {"exec": {"command": "gke-gcloud-auth-plugin",
                                          "env": [{"name": "CLOUDSDK_CONFIG", "value": "x"},
                                                  {"name": "OTHER", "value": "y"}]}}},
        {"name": "token", "user": {"token": "abc"}}]}))
    _pin_gcloud_config(kubeconfig, "/run/gcloud")
    users = yaml.safe_load(kubeconfig.read_text())["users"]
    assert users[0]["user"]["exec"]["env"] == [
        {"name": "OTHER", "value": "y"}, {"name": "CLOUDSDK_CONFIG", "value": "/run/gcloud"}]
    assert users[1] == {"name": "token", "user": {"token": "abc"}}
