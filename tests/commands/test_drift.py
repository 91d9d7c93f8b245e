"""`drift`: helm releases against a recorded helm (no Kubernetes API server can run here),
weights against a real `redirector serve` process in front of stand-in members, exit codes and
the table/JSON through the CLI. Terraform drift with moto: tests/commands/terraform/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from federation_deploy.actions.kube_auth import ClusterTools
from federation_deploy.cli.context import Context
from federation_deploy.cli.main import cli
from federation_deploy.commands import drift as drift_command
from federation_deploy.config import Federation, load_federation
from federation_deploy.values.render import render_releases
from tests.helpers.pins import pinned
from tests.helpers.recording import Call, RecordingRunner
from tests.helpers.standin_federation import StandinFederation
from tests.traffic.test_one_writer import RedirectorProcess, start_redirector, stop, wait_for

GCP_TOOLS = ClusterTools(kubectl="kubectl", gcloud="gcloud")


def _flag(words: list[str], name: str) -> str | None:
    return words[words.index(name) + 1] if name in words else None


def deployed_as_rendered(recorder: RecordingRunner, fed: Federation, member: str,
                         changes: dict[str, dict[str, Any]] | None = None) -> None:
    """helm list and helm get values answer for each release what `render` gives, except the
    fields in changes ({release: {"status"|"chart"|"values"|"missing": ...}})."""
    changes = changes or {}
    rendered = {r.release.helm_name: r for r in render_releases(fed, fed.member(member))}

    def rule(call: Call) -> tuple[int, str, str] | None:
        w = call.words
        if w[:3] == ["helm", "list", "--all"]:
            name = re.sub(r"\\(.)", r"\1", (_flag(w, "--filter") or "").strip("^$"))
            item = rendered[name]
            change = changes.get(name, {})
            if change.get("missing"):
                return 0, "[]", ""
            listed = {"name": name, "namespace": item.release.namespace, "revision": "3",
                      "status": change.get("status", "deployed"),
                      "chart": change.get("chart", f"{item.release.chart}-"
                                                   f"{item.release.version}"),
                      "app_version": "1"}
            return 0, json.dumps([listed]), ""
        if w[:3] == ["helm", "get", "values"]:
            item = rendered[w[3]]
            return 0, json.dumps(changes.get(w[3], {}).get("values", item.values)), ""
        return None

    recorder.rules.insert(0, rule)


@pytest.fixture
def fed(config_dir: Path) -> Federation:
    return load_federation(config_dir)


def helm_part(fed: Federation, recorder: RecordingRunner) -> drift_command.PartReport:
    (report,) = drift_command.drift_report(fed, "gke", runner=recorder, parts=("helm",),
                                           helm_executable="helm", tools=GCP_TOOLS)
    skipped = [p.status for p in report.parts if p.part != "helm"]
    assert skipped == ["skipped", "skipped"]
    return next(p for p in report.parts if p.part == "helm")


def test_releases_deployed_as_rendered_are_clean(fed: Federation, recorder: RecordingRunner,
                                                 private_tmp: Path) -> None:
    deployed_as_rendered(recorder, fed, "gke")
    part = helm_part(fed, recorder)
    assert (part.status, part.findings) == ("clean", [])
    lists = [c.words for c in recorder.calls if c.words[1] == "list"]
    assert lists[0][:8] == ["helm", "list", "--all", "--filter", r"^cert\-manager$",
                            "--namespace", "cert-manager", "--output"]
    assert len(lists) == 4  # every release of gke
    assert list(private_tmp.iterdir()) == []  # the kubeconfig went with the run


def test_values_version_status_and_missing_release_are_drift_without_values(
        fed: Federation, recorder: RecordingRunner) -> None:
    (binderhub,) = render_releases(fed, fed.member("gke"), ["binderhub"])
    values = json.loads(json.dumps(binderhub.values))
    values.setdefault("config", {}).setdefault("GitHubRepoProvider", {})["access_token"] = \
        "s3cr3t-deployed-token"
    deployed_as_rendered(recorder, fed, "gke", {
        "binderhub": {"values": values},
        "ingress-nginx": {"chart": "ingress-nginx-4.7.0", "status": "pending-upgrade"},
        "cert-manager": {"missing": True},
    })
    part = helm_part(fed, recorder)
    assert part.status == "drift"
    assert part.findings == [
        "cert-manager: not installed (namespace cert-manager)",
        "ingress-nginx: status pending-upgrade (revision 3)",
        f"ingress-nginx: chart ingress-nginx-4.7.0 deployed, ingress-nginx "
        f"{pinned('ingress-nginx')} pinned",
        "binderhub: values differ from render at config.GitHubRepoProvider.access_token",
    ]
    assert "s3cr3t" not in json.dumps(drift_command.report_json(
        [drift_command.MemberDrift("gke", [part])]))


def test_an_unreachable_cluster_is_not_checked_never_clean(fed: Federation,
                                                           recorder: RecordingRunner) -> None:
    recorder.answer(["kubectl", "get", "--raw"], 1, "",
                    "Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout\n")
    part = helm_part(fed, recorder)
    assert part.status == "not checked"
    assert "cannot reach the Kubernetes API of member 'gke'" in part.detail
    assert drift_command.drift_result([drift_command.MemberDrift("gke", [part])],
                                      "table").exit_code == 1


def test_external_members_have_no_helm_or_terraform_part(fed: Federation,
                                                         recorder: RecordingRunner) -> None:
    (report,) = drift_command.drift_report(fed, "gesis", runner=recorder,
                                           parts=("terraform", "helm"))
    assert [(p.part, p.status, p.detail) for p in report.parts[:2]] == [
        ("terraform", "n/a", "no terraform stack"),
        ("helm", "n/a", "external member: not deployed by us")]
    assert report.status == "clean" and recorder.calls == []


def test_in_a_sandbox_helm_and_stacks_without_an_emulator_are_n_a(
        config_dir: Path, recorder: RecordingRunner) -> None:
    text = (config_dir / "federation.yaml").read_text()
    (config_dir / "federation.yaml").write_text(text.replace(
        "generation: 0\n", "generation: 0\nsandbox:\n  redirector_config: redirector.json\n", 1))
    fed = load_federation(config_dir)
    reports = drift_command.drift_report(fed, None, runner=recorder,
                                         parts=("terraform", "helm"))
    by_member = {r.member: {p.part: (p.status, p.detail) for p in r.parts} for r in reports}
    assert by_member["gke"]["helm"] == (
        "n/a", "in a sandbox: its members are stand-ins, without a cluster")
    assert by_member["gke"]["terraform"] == (
        "n/a", "in a sandbox: no emulator of gcp for its stack")
    # curvenote's AWS stack, without a moto_server in `sandbox:`
    assert by_member["curvenote"]["terraform"][0] == "n/a"
    assert all(r.status == "clean" for r in reports) and recorder.calls == []


def test_values_paths_name_keys_only() -> None:
    old = {"a": {"b": {"c": 1, "d": [1]}, "x": 1.0}, "gone": "v"}
    new = {"a": {"b": {"c": 2, "d": [1]}, "x": 1}, "new": {"k": "v"}}
    paths = drift_command.differing_paths(drift_command.normalised(old),
                                          drift_command.normalised(new))
    assert paths == ["a.b.c", "gone", "new"]  # 1.0 and 1 are the same to helm's JSON


# --------------------------------------------------------------------------------------------
# weights: a real redirector process


@pytest.fixture
def served(federation: StandinFederation, published: Path,
           tmp_path: Path) -> Iterator[RedirectorProcess]:
    running = start_redirector(published, tmp_path / "redirector.log")
    try:
        wait_for(lambda: set(running.state()[0]) == {"alpha", "beta"}, "alpha and beta in rotation")
        yield running
    finally:
        stop(running.proc)


def run_drift(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config), "drift", *args])
    return result.exit_code, result.stdout, result.stderr


def test_weights_served_as_configured_are_clean_and_a_hand_edit_is_drift(
        federation: StandinFederation, published: Path, served: RedirectorProcess) -> None:
    code, out, err = run_drift(federation.config_dir, "--part", "weights",
                               "--redirector-url", served.url, "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["drift"] is False
    assert [(m["member"], m["parts"]["weights"]["status"]) for m in data["members"]] == [
        ("alpha", "clean"), ("beta", "clean"), ("gamma", "clean")]

    # someone edits the served config by hand: beta at 10 and a newer generation
    config = json.loads(published.read_text())
    config["hosts"]["beta"]["weight"] = 10
    config["generation"] = 7
    published.write_text(json.dumps(config))
    wait_for(lambda: served.state()[1] == 7, "the redirector to reload")
    code, out, err = run_drift(federation.config_dir, "--part", "weights",
                               "--redirector-url", served.url)
    assert code == 3, err
    assert "beta weights: the redirector serves weight 10, federation.yaml says 40" in out
    # the generation is the redirector's member's (alpha's) business
    assert "alpha weights: the redirector serves generation 7 of the weights, " \
           "federation.yaml has 0" in out
    assert re.search(r"^gamma\s+skipped\s+skipped\s+clean\s+clean$", out, re.MULTILINE), out
    assert "drift in alpha, beta" in err


def test_a_generation_alone_differing_with_equal_weights_is_a_note_not_drift(
        federation: StandinFederation, published: Path, served: RedirectorProcess) -> None:
    # what an older version's freeze left: generation one more in federation.yaml, unpublished
    config = json.loads(published.read_text())
    config["generation"] = 7
    published.write_text(json.dumps(config))
    wait_for(lambda: served.state()[1] == 7, "the redirector to reload")
    code, out, err = run_drift(federation.config_dir, "--part", "weights",
                               "--redirector-url", served.url)
    assert code == 0, out + err
    assert re.search(r"^alpha\s+skipped\s+skipped\s+clean\s+clean$", out, re.MULTILINE), out
    assert ("alpha weights: note: the redirector serves generation 7 of the weights, "
            "federation.yaml has 0: generation differs, weights equal (not drift)") in out
    code, out, err = run_drift(federation.config_dir, "--part", "weights",
                               "--redirector-url", served.url, "-o", "json")
    alpha = json.loads(out)["members"][0]["parts"]["weights"]
    assert alpha["status"] == "clean" and "weights equal" in alpha["notes"][0]


def test_weights_of_a_redirector_that_does_not_answer_are_not_checked(
        federation: StandinFederation, tmp_path: Path) -> None:
    code, out, err = run_drift(federation.config_dir, "beta", "--part", "weights",
                               "--redirector-url", "http://127.0.0.1:9")
    assert code == 1
    assert "beta weights: not checked: http://127.0.0.1:9/metrics: connection failed" in out
    assert re.search(r"^beta\s+skipped\s+skipped\s+not checked\s+not checked$", out,
                     re.MULTILINE), out
    assert "not reported clean" in err


def test_unknown_member_is_usage(config_dir: Path) -> None:
    code, _, err = run_drift(config_dir, "nope", "--part", "weights")
    assert code == 2 and "nope" in err


@pytest.fixture
def wired(recorder: RecordingRunner, fake_tools: Path, private_tmp: Path,
          monkeypatch: pytest.MonkeyPatch) -> RecordingRunner:
    monkeypatch.setattr(Context, "runner", lambda self, **_: recorder)
    return recorder


def test_cli_helm_drift_exit_3_and_report_read_back(config_dir: Path, wired: RecordingRunner,
                                                    tmp_path: Path) -> None:
    fed = load_federation(config_dir)
    deployed_as_rendered(wired, fed, "gke", {"binderhub": {"status": "pending-upgrade"}})
    code, out, err = run_drift(config_dir, "gke", "--part", "helm", "-o", "json")
    assert code == 3, err
    report = tmp_path / "drift.json"
    report.write_text(out)
    code, table, _ = run_drift(config_dir, "--report", str(report))
    assert code == 3
    assert "gke helm: binderhub: status pending-upgrade (revision 3)" in table
    assert re.search(r"^gke\s+skipped\s+drift \(1\)\s+skipped\s+drift$", table, re.MULTILINE)


# -- credentials in --redirector-url and in what a server echoes (issue 29 re-trial, 3) ------


def test_a_password_in_the_redirector_url_is_never_printed(
        federation: StandinFederation) -> None:
    url = "http://someone:S3CRET-PASS@127.0.0.1:9"
    for output in (["-o", "table"], ["-o", "json"]):
        code, out, err = run_drift(federation.config_dir, "beta", "--part", "weights",
                                   "--redirector-url", url, *output)
        assert code == 1
        assert "S3CRET-PASS" not in out + err
        assert "http://***@127.0.0.1:9/metrics: connection failed" in out


def test_a_body_echoing_our_authorization_is_not_quoted_back(
        federation: StandinFederation) -> None:
    from tests.helpers.serve import http_head, scripted
    # a server that echoes the request's headers (httpbin's /anything) as JSON, on every path
    echoed = json.dumps({"headers": {"Authorization": "Basic c29tZW9uZTpTM0NSRVQtUEFTUw=="},
                         "url": "http://someone:S3CRET-PASS@127.0.0.1/active_hosts"}).encode()
    with scripted([(0.0, http_head(len(echoed))), (0.0, echoed)]) as base:
        url = base.replace("http://", "http://someone:S3CRET-PASS@")
        code, out, err = run_drift(federation.config_dir, "beta", "--part", "weights",
                                   "--redirector-url", url, "-o", "json")
    assert code == 1, out + err
    assert "S3CRET-PASS" not in out + err and "c29tZW9uZTpTM0NSRVQtUEFTUw" not in out + err
    reason = json.loads(out)["members"][0]["parts"]["weights"]["detail"]
    assert "/active_hosts: expected" in reason, reason
