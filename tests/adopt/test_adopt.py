"""adopt on the mybinder-deploy fixture: the federation.yaml it writes and what it cannot map."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from federation_deploy.adopt.federation import (
    adopt_repository,
    is_git_crypt_locked,
    shared_chart_pins,
)
from federation_deploy.cli.main import cli

CD_ORDER = ["staging", "prod", "hetzner-2i2c", "hetzner-gesis", "bids-ovh"]


def run_adopt(*args: str) -> Any:
    return CliRunner().invoke(cli, ["adopt", *args])


def written(repo: Path) -> dict[str, Any]:
    data = yaml.safe_load((repo / "federation.yaml").read_text())
    assert isinstance(data, dict)
    return data


def expand(repo: Path, entries: list[Any], member: str) -> list[str]:
    """The files a values list names for a member, as the loader will read them: globs
    sorted, {member} substituted, optional files skipped when absent."""
    files: list[str] = []
    for entry in entries:
        spec = {"path": entry} if isinstance(entry, str) else entry
        pattern = spec["path"].replace("{member}", member)
        matches = sorted(str(p.relative_to(repo)) for p in repo.glob(pattern))
        if not matches:
            assert spec.get("optional"), f"{pattern} matches nothing for {member}"
        files += matches
    return files


def deploy_py_config_files(repo: Path, member: str, config_dir: str = "config") -> list[str]:
    """What the fixture's own get_config_files() returns (the test runs the fixture's
    function, in the repository, as the oracle; adopt never runs deploy.py)."""
    spec = importlib.util.spec_from_file_location("fixture_deploy", repo / "deploy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [str(p) for p in module.get_config_files(member, config_dir=config_dir)]


def test_members_clouds_and_clusters_from_the_tables(deploy_repo: Path) -> None:
    members = adopt_repository(deploy_repo).document["members"]
    assert list(members) == CD_ORDER
    assert {name: m["cloud"] for name, m in members.items()} == {
        "staging": "kubeconfig",  # in GCP_ZONES too, but deploy.py tries kubeconfig first
        "prod": "gcp", "hetzner-2i2c": "kubeconfig", "hetzner-gesis": "kubeconfig",
        "bids-ovh": "kubeconfig"}
    assert members["prod"]["cluster"] == {"project": "example-binder-project",
                                          "location": "europe-west1", "name": "prod",
                                          "key_file": "secrets/gke-auth-key-prod.json"}
    assert members["bids-ovh"]["cluster"] == {"kubeconfig": "bids-ovh-kubeconfig.yaml"}
    assert members["prod"]["url"] == "https://gke.binder.example.org"  # its ingress host
    assert members["staging"]["routed"] is False and members["prod"]["routed"] is False


def test_redirector_hosts_weights_and_prime_equal_the_federation_redirect_values(
    deploy_repo: Path
) -> None:
    document = adopt_repository(deploy_repo).document
    values = yaml.safe_load((deploy_repo / "config" / "prod.yaml").read_text())
    hosts = values["federationRedirect"]["hosts"]
    members = document["members"]
    for name, host in hosts.items():
        assert (members[name]["url"], members[name]["weight"], members[name]["prime"]) == (
            host["url"], host["weight"], host["prime"]), name
    routed = [n for n, m in members.items() if m.get("routed", True)]
    assert sorted(routed) == sorted(hosts)
    chart = yaml.safe_load((deploy_repo / "mybinder" / "values.yaml").read_text())
    assert document["redirector"] == {
        "host": chart["federationRedirect"]["host"], "member": "prod", "release": "mybinder",
        "load_balancer": "random", "check": chart["federationRedirect"]["check"],
        "pod_headroom": 10}


def test_ci_order_terraform_and_secrets(deploy_repo: Path) -> None:
    adoption = adopt_repository(deploy_repo)
    document = adoption.document
    assert document["ci"] == {"order": CD_ORDER, "staging": ["staging"]}
    # the fixture's stack pins a range (as mybinder.org-deploy's do): federation.yaml pins one
    # version inside it, which validate checks; the stack has no backend, so no member has it
    assert document["terraform"] == {"version": "1.11.4", "root": "terraform"}
    assert not any(u.what == "the terraform version" for u in adoption.unmapped)
    assert not any("terraform" in m for m in document["members"].values())
    assert document["secrets"] == {"stand_in": "config/test-secrets.yaml"}
    assert any("secrets/config/bids-ovh.yaml" in note and "git-crypt" in note
               for note in adoption.notes)
    assert is_git_crypt_locked(deploy_repo / "secrets" / "config" / "bids-ovh.yaml")
    assert not is_git_crypt_locked(deploy_repo / "secrets" / "config" / "prod.yaml")


@pytest.mark.parametrize("member", CD_ORDER)
def test_values_files_in_deploy_py_order(
    deploy_repo: Path, member: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    releases = adopt_repository(deploy_repo).document["members"][member]["releases"]
    umbrella = releases[-1]
    assert umbrella["chart"] == "./mybinder"
    monkeypatch.chdir(deploy_repo)
    assert expand(deploy_repo, umbrella["values"], member) == deploy_py_config_files(
        deploy_repo, member)
    secret = [e["path"] for e in umbrella["values"] if isinstance(e, dict) and e.get("secret")]
    assert secret == ["secrets/config/common/*.yaml", "secrets/config/{member}.yaml"]


def test_release_names_namespaces_system_chart_and_cert_manager(deploy_repo: Path) -> None:
    document = adopt_repository(deploy_repo).document
    members = document["members"]
    # every member runs the same cert-manager: pinned once, in the charts: table
    assert document["charts"] == {"cert-manager": {
        "chart": "oci://quay.io/jetstack/charts/cert-manager", "version": "v1.18.2"}}
    for name in CD_ORDER:
        umbrella = members[name]["releases"][-1]
        live = "gesis" if name == "hetzner-gesis" else name  # cd.yml's release_name
        assert (umbrella["name"], umbrella["release"], umbrella["namespace"]) == (
            "mybinder", live, live)
        cert_manager = members[name]["releases"][-2]
        assert cert_manager == {
            "name": "cert-manager", "chart": "cert-manager", "namespace": "cert-manager",
            "crds": "https://github.com/cert-manager/cert-manager/releases/download/v1.18.2/"
                    "cert-manager.crds.yaml",
            "values": ["config/cert-manager.yaml"]}
    gesis = members["hetzner-gesis"]["releases"]
    assert [r["name"] for r in gesis] == ["kube-system", "cert-manager", "mybinder"]
    system = gesis[0]
    assert (system["release"], system["namespace"], system["chart"]) == (
        "gesis", "kube-system", "./mybinder-kube-system")
    assert expand(deploy_repo, system["values"], "hetzner-gesis") == [
        "system-config/kube-system/hetzner-gesis.yaml"]
    assert [r["name"] for r in members["prod"]["releases"]] == ["cert-manager", "mybinder"]


def test_deploy_py_steps_become_hooks_in_its_order(deploy_repo: Path) -> None:
    adoption = adopt_repository(deploy_repo)
    assert {u.what for u in adoption.unmapped} == {
        "member localhost (a developer's own cluster)",
        "member oldcloud of KUBECONFIG_CLUSTERS",
        "member retired-eks of AWS_DEPLOYMENTS",
        "image builds with chartpress",
        "the members' Kubernetes versions",
    }
    (versions,) = [u for u in adoption.unmapped if u.what == "the members' Kubernetes versions"]
    assert "set members.NAME.kubernetes_version" in versions.how and "prod" in versions.how
    coredns = {"name": "coredns-resources", "after": "auth", "argv": [
        "kubectl", "set", "resources", "-n", "kube-system", "deployments/coredns",
        "--limits", "memory=256Mi", "--requests", "memory=192Mi"]}
    bans = [{"name": "network-bans-1", "after": "auth", "argv": ["python3", "secrets/ban.py"]},
            {"name": "network-bans-2", "after": "auth", "argv": [
                "python3", "secrets/generate-banned-ips.py", "--namespace={namespace}",
                "--allowed-cidrs-file=secrets/allowed_ips.txt"]}]
    # with cd.yml's retry action around them: 3 attempts of at most 10 minutes
    tests = {"name": "post-deploy-tests", "after": "verify",
             "argv": ["python3", "-m", "pytest", "-vx", "--release={member}", "tests/"],
             "attempts": 3, "timeout": 600}
    members = adoption.document["members"]
    for name in CD_ORDER:
        # deploy.py patches CoreDNS right after a kubeconfig member's auth (not prod's)
        expected = [*([coredns] if name != "prod" else []), *bans, tests]
        assert members[name]["hooks"] == expected, name


def test_cli_writes_commented_yaml_and_refuses_to_overwrite(deploy_repo: Path) -> None:
    result = run_adopt(str(deploy_repo))
    assert result.exit_code == 0, result.output
    text = (deploy_repo / "federation.yaml").read_text()
    assert written(deploy_repo) == adopt_repository(deploy_repo).document
    assert "# the CD order read from cd.yml" in text
    # the cert-manager pin is written once, for the five members that deploy it
    assert text.count("oci://quay.io/jetstack/charts/cert-manager") == 1
    assert len(re.findall(r"^\s*version: v1\.18\.2$", text, re.MULTILINE)) == 1
    assert text.count("chart: cert-manager\n") == len(CD_ORDER)
    assert "#   - image builds with chartpress (.github/workflows/cd.yml:19)" in text
    assert "wrote" in result.stderr and "5 things adopt could not map:" in result.stderr
    assert "argv: [python3, secrets/ban.py]" in text  # written, not printed to paste
    assert "network-bans" not in result.stderr
    assert "federation-deploy.yml: CD with federation-deploy (cd.yml untouched)" \
        in result.stderr
    assert result.stdout == ""
    (deploy_repo / "federation.yaml").write_text("# mine\n")
    again = run_adopt(str(deploy_repo))
    assert again.exit_code == 2
    assert "federation.yaml exists: adopt never overwrites it without --force" in again.stderr
    assert (deploy_repo / "federation.yaml").read_text() == "# mine\n"
    (deploy_repo / "federation.yaml").chmod(0o640)
    forced = run_adopt(str(deploy_repo), "--force")
    assert forced.exit_code == 0, forced.output
    assert (deploy_repo / "federation.yaml").read_text() == text
    # the previous file is kept, with its mode, and said
    orig = deploy_repo / "federation.yaml.orig"
    assert orig.read_text() == "# mine\n" and (orig.stat().st_mode & 0o777) == 0o640
    assert f"kept the previous federation.yaml as {orig}" in forced.stderr


def test_force_keeps_every_replaced_file_never_overwriting_a_copy(deploy_repo: Path) -> None:
    assert run_adopt(str(deploy_repo)).exit_code == 0
    federation = deploy_repo / "federation.yaml"
    workflow = deploy_repo / ".github" / "workflows" / "federation-deploy.yml"
    for edit in ("# hand edit 1\n", "# hand edit 2\n"):
        federation.write_text(federation.read_text() + edit)
        workflow.write_text(workflow.read_text() + edit)
        forced = run_adopt(str(deploy_repo), "--force")
        assert forced.exit_code == 0, forced.output
    copies = sorted(p.name for p in deploy_repo.glob("federation.yaml.orig*"))
    assert copies == ["federation.yaml.orig", "federation.yaml.orig.1"]
    assert (deploy_repo / "federation.yaml.orig").read_text().endswith("# hand edit 1\n")
    assert (deploy_repo / "federation.yaml.orig.1").read_text().endswith("# hand edit 2\n")
    kept = workflow.with_name("federation-deploy.yml.orig.1")
    assert kept.read_text().endswith("# hand edit 2\n")
    assert workflow.with_name("federation-deploy.yml.orig").read_text().endswith(
        "# hand edit 1\n")
    assert f"kept the previous federation-deploy.yml as {kept}" in forced.stderr
    assert f"kept the previous federation.yaml as {federation}.orig.1" in forced.stderr


def test_deploy_py_is_never_executed(deploy_repo: Path) -> None:
    marker = deploy_repo / "EXECUTED"
    script = deploy_repo / "deploy.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit(7)\n"
                      + script.read_text())
    result = run_adopt(str(deploy_repo))
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    assert list(written(deploy_repo)["members"]) == CD_ORDER


def test_bad_repositories_exit_2_naming_the_file(deploy_repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_adopt(str(empty))
    assert result.exit_code == 2 and "no deploy.py" in result.stderr
    script = deploy_repo / "deploy.py"
    text = script.read_text()
    script.write_text(text.replace('AZURE_RGs = {}', 'AZURE_RGs = {'))
    result = run_adopt(str(deploy_repo))
    assert result.exit_code == 2
    assert "deploy.py:39: Python syntax error" in result.stderr, result.stderr
    script.write_text(text)
    (deploy_repo / "config" / "prod.yaml").write_bytes(b"\x00GITCRYPT\x00\x01\x02")
    result = run_adopt(str(deploy_repo))
    assert result.exit_code == 2
    assert "config/prod.yaml is locked with git-crypt: run git-crypt unlock" in result.stderr
    assert not (deploy_repo / "federation.yaml").exists()


def test_a_computed_table_is_reported_not_guessed(deploy_repo: Path) -> None:
    script = deploy_repo / "deploy.py"
    script.write_text(script.read_text().replace(
        'AWS_DEPLOYMENTS = {"retired-eks": "binderhub"}',
        'AWS_DEPLOYMENTS = dict(os.environ.get("EKS", {}))'))
    adoption = adopt_repository(deploy_repo)
    computed = [u for u in adoption.unmapped if u.what.startswith("AWS_DEPLOYMENTS")]
    assert [u.where for u in computed] == ["deploy.py:36"]
    assert "retired-eks" not in " ".join(u.what for u in adoption.unmapped)


def test_shared_chart_pins_only_for_charts_several_releases_use() -> None:
    def release(name: str, chart: str, version: str, repo: str | None = None) -> dict[str, Any]:
        entry = {"name": name, "chart": chart, "version": version, "namespace": name}
        return entry if repo is None else {**entry, "repo": repo}

    jetstack = "https://charts.jetstack.io"
    members: dict[str, Any] = {
        "a": {"releases": [release("cert-manager", "cert-manager", "v1.2.3", jetstack),
                           release("x", "oci://r.example/charts/x", "1.0.0"),
                           {"name": "mybinder", "chart": "./mybinder", "namespace": "a"}]},
        "b": {"releases": [release("cert-manager", "cert-manager", "v1.2.3", jetstack),
                           release("y", "oci://r.example/charts/x", "1.0.0")]},
        # the same chart at another version, used once: it keeps its own pin, and the
        # table's entry for the shared version takes another name
        "c": {"releases": [release("cert-manager", "cert-manager", "v9.9.9", jetstack),
                           {"name": "mybinder", "chart": "./mybinder", "namespace": "c"}]},
    }
    assert shared_chart_pins(members) == {
        "cert-manager-2": {"chart": "cert-manager", "repo": jetstack, "version": "v1.2.3"},
        "x": {"chart": "oci://r.example/charts/x", "version": "1.0.0"},
    }
    assert members["a"]["releases"][:2] == [
        {"name": "cert-manager", "chart": "cert-manager-2", "namespace": "cert-manager"},
        {"name": "x", "chart": "x", "namespace": "x"}]
    assert members["b"]["releases"][1] == {"name": "y", "chart": "x", "namespace": "y"}
    assert members["c"]["releases"][0] == release("cert-manager", "cert-manager", "v9.9.9",
                                                  jetstack)
    assert members["c"]["releases"][1]["chart"] == "./mybinder"
