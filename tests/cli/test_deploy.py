"""deploy, diff and verify through Click with a recording Runner: confirmation, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.context import Context
from federation_deploy.cli.main import cli
from tests.helpers.recording import RecordingRunner


@pytest.fixture
def wired(recorder: RecordingRunner, fake_tools: Path, private_tmp: Path,
          monkeypatch: pytest.MonkeyPatch) -> RecordingRunner:
    """The CLI's Runner is the recorder; helm, kubectl and gcloud resolve to stand-ins."""
    monkeypatch.setattr(Context, "runner", lambda self, **_: recorder)
    return recorder


def run(config: Path, *args: str, ci: bool = False) -> tuple[int, str, str]:
    env: dict[str, str | None] = {"CI": "true" if ci else None}
    result = CliRunner().invoke(cli, ["--config-dir", str(config), *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_outside_ci_without_a_terminal_it_asks_for_yes(config_dir: Path,
                                                       wired: RecordingRunner) -> None:
    code, out, err = run(config_dir, "deploy", "gke", "--stage", "releases")
    assert code == 2
    assert "Deploy 4 release(s) (cert-manager, ingress-nginx, binderhub, federation-redirect) " \
           "to member gke (gcp)? needs confirmation: pass --yes" in err
    assert wired.calls == []


def test_yes_deploys(config_dir: Path, wired: RecordingRunner, fake_tools: Path,
                     private_tmp: Path) -> None:
    code, out, err = run(config_dir, "deploy", "gke", "--stage", "releases", "--yes",
                         "--release", "federation-redirect", "--timeout", "1.5m")
    assert code == 0, err
    assert out == ""
    assert [c.words[:2] for c in wired.calls][:3] == [
        ["helm", "version"], ["gcloud", "container"], ["kubectl", "get"]]
    assert wired.calls[0].argv[0] == str(fake_tools / "helm")
    # helm's own syntax (1.5m) is taken, and helm and kubectl get it as a Go duration
    upgrade = next(c for c in wired.calls if c.words[1] == "upgrade")
    assert upgrade.words[upgrade.words.index("--timeout") + 1] == "1m30s"
    rollouts = [c for c in wired.calls if c.words[1:3] == ["rollout", "status"]]
    assert rollouts and all("--timeout=1m30s" in c.words for c in rollouts)
    assert "releases: federation-redirect (revision 3, deployed)" in err
    assert "rollout: 2 deployment(s)/daemonset(s) rolled out" in err
    assert err.endswith("deploy of gke done (stages: auth, releases, rollout)\n")
    assert list(private_tmp.iterdir()) == []


def test_in_ci_no_confirmation(config_dir: Path, wired: RecordingRunner) -> None:
    code, _, err = run(config_dir, "deploy", "gke", "--stage", "releases", ci=True)
    assert code == 0, err
    assert sum(c.words[1] == "upgrade" for c in wired.calls) == 4


def test_read_only_stages_need_no_confirmation(config_dir: Path, wired: RecordingRunner) -> None:
    code, _, err = run(config_dir, "deploy", "gke", "--stage", "auth")
    assert code == 0, err
    assert [c.tool for c in wired.calls] == ["helm", "gcloud", "kubectl"]


def test_failing_stage_exit_1_one_message(config_dir: Path, wired: RecordingRunner,
                                          private_tmp: Path) -> None:
    wired.answer(["helm", "upgrade", "binderhub"], 1, "",
                 "Error: UPGRADE FAILED: pre-upgrade hooks failed: job failed: "
                 "BackoffLimitExceeded\n")
    code, _, err = run(config_dir, "deploy", "gke", "--stage", "releases", "--yes")
    assert code == 1
    assert "Traceback" not in err
    assert "error: stage 'releases' failed: release 'binderhub' (binderhub " in err
    assert "(not attempted: federation-redirect)" in err
    assert "    Error: UPGRADE FAILED: pre-upgrade hooks failed" in err  # helm's own, indented
    assert sum(c.words[1] == "upgrade" for c in wired.calls) == 3
    assert list(private_tmp.iterdir()) == []


def test_unreachable_cluster_exit_1(config_dir: Path, wired: RecordingRunner) -> None:
    wired.answer(["kubectl", "get", "--raw"], 1, "",
                 "Unable to connect to the server: dial tcp 35.1.2.3:443: i/o timeout\n")
    code, _, err = run(config_dir, "deploy", "gke", "--yes")
    assert code == 1 and "Traceback" not in err
    first = next(line for line in err.splitlines() if line.startswith("error: "))
    assert first == "error: stage 'auth' failed: cannot reach the Kubernetes API of member 'gke'"
    assert "hint: check that the cluster is running" in err


def save_terraform_outputs(config_dir: Path, member: str) -> None:
    """What `terraform apply MEMBER` saves: every output the member maps into its values."""
    import json

    from federation_deploy.config import load_federation

    stack = load_federation(config_dir).member(member).terraform
    if stack is None:
        return
    path = config_dir / "generated" / f"{member}.terraform.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({name: {"value": f"saved-{name}", "sensitive": False}
                                for name in stack.outputs}))


@pytest.mark.parametrize(("member", "missing"), [("gke", "gcloud"), ("curvenote", "aws"),
                                                 ("gke", "helm")])
def test_missing_binary_exit_1_with_the_fix(config_dir: Path, wired: RecordingRunner,
                                            fake_tools: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, member: str,
                                            missing: str) -> None:
    from federation_deploy.actions import helm

    monkeypatch.setattr(helm, "CHECKOUT_HELM", tmp_path / "absent")
    (fake_tools / missing).unlink()
    save_terraform_outputs(config_dir, member)  # else deploy refuses first (exit 2)
    code, _, err = run(config_dir, "deploy", member, "--yes", "--stage", "releases")
    assert code == 1
    assert err.startswith(f"error: {missing} not found")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert wired.calls == []


def test_external_member_exit_2(config_dir: Path, wired: RecordingRunner) -> None:
    code, _, err = run(config_dir, "deploy", "gesis", "--yes")
    assert code == 2 and "member 'gesis' is external" in err
    assert wired.calls == []


@pytest.mark.parametrize("timeout", ["ten minutes", "0", "-5m"])
def test_bad_timeout_exit_2(config_dir: Path, timeout: str) -> None:
    code, _, err = run(config_dir, "deploy", "gke", "--timeout", timeout)
    assert code == 2 and "Invalid value for '--timeout'" in err


def test_step_summary_under_github_actions(config_dir: Path, wired: RecordingRunner,
                                           tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    env = {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "deploy", "gke",
                                      "--stage", "releases", "--release", "federation-redirect"],
                                env=env)
    assert result.exit_code == 0, result.stderr
    text = summary.read_text()
    assert text.startswith("# earlier step\n### deploy of `gke`\n")  # appended, not replaced
    assert "stages: auth, releases, rollout" in text
    assert "| release | namespace | chart | version | revision | status |" in text
    assert "| federation-redirect | federation-redirect | " in text
    assert "| 3 | deployed |" in text


def test_no_step_summary_outside_github_actions(config_dir: Path, wired: RecordingRunner,
                                                tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {"CI": "true", "GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": str(summary)}
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "deploy", "gke",
                                      "--stage", "releases", "--release", "federation-redirect"],
                                env=env)
    assert result.exit_code == 0, result.stderr
    assert not summary.exists()


def test_unknown_release_exit_2(config_dir: Path, wired: RecordingRunner) -> None:
    code, _, err = run(config_dir, "deploy", "gke", "--release", "nope", "--yes")
    assert code == 2 and "member 'gke' has no release 'nope'" in err


def test_diff_exit_codes(config_dir: Path, wired: RecordingRunner) -> None:
    wired.answer(["helm", "plugin", "list"], 0, "NAME\tVERSION\ndiff\t3.9.14\n")
    code, out, err = run(config_dir, "diff", "gke")
    assert code == 0, err
    assert out == "" and "diff of gke (helm-diff): no change" in err

    wired.answer(["helm", "diff", "upgrade", "binderhub"], 0, "prod, binderhub, Deployment ...\n")
    code, out, err = run(config_dir, "diff", "gke")
    assert code == 3
    assert out == "# release binderhub (namespace prod)\nprod, binderhub, Deployment ...\n"
    assert "1 of 4 release(s) would change: binderhub" in err

    wired.answer(["helm", "diff", "upgrade", "binderhub"], 1, "", "Error: boom\n")
    code, out, err = run(config_dir, "diff", "gke")
    assert code == 1 and "stage 'diff' failed: cannot compare release 'binderhub'" in err
