"""ci-matrix: the member matrix for GitHub Actions, and change detection in a real git repo."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands import freeze as freezing
from federation_deploy.commands.drain import drain_member, restore_member
from federation_deploy.commands.unfreeze import unfreeze
from federation_deploy.config import load_federation
from federation_deploy.config.ci_matrix import RepoLayout, affected_members, build_matrix
from federation_deploy.durations import Clock
from tests.helpers.pins import pinned
from tests.helpers.recording import RecordingRunner

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


def run(config_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "ci-matrix", *args])
    return result.exit_code, result.stdout, result.stderr


def members_of(stdout: str) -> list[str]:
    assert stdout.count("\n") == 1, "one line, for $GITHUB_OUTPUT"
    return [entry["member"] for entry in json.loads(stdout)["include"]]


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, text=True,
                          capture_output=True, check=True)
    return proc.stdout.strip()


@pytest.fixture
def repo(config_dir: Path) -> Path:
    """A git repository around the copied config and terraform, with a stand-in package."""
    root = config_dir.parent
    (root / "federation_deploy").mkdir()
    (root / "federation_deploy" / "__init__.py").write_text('"""stand-in"""\n')
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "base")
    git(root, "tag", "base")
    return root


Change = Callable[[str, str, str], None]
AT = Clock(now=lambda: datetime(2026, 12, 7, 8, 0, tzinfo=UTC), sleep=lambda _s: None)


@pytest.fixture
def change(repo: Path) -> Change:
    """Edit (or create, with old="") a file in the repository and commit it."""

    def _change(relative: str, old: str, new: str) -> None:
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text() if path.exists() else ""
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1) if old else text + new)
        git(repo, "add", "--all")
        git(repo, "commit", "--quiet", "-m", f"change {relative}")

    return _change


def changed(config_dir: Path) -> list[str]:
    code, out, err = run(config_dir, "--changed-since", "base")
    assert code == 0, err
    return members_of(out)


HELPER = pinned("binderhub-container-registry-helper")


# --- the full matrix ------------------------------------------------------------------------


def test_matrix_of_the_repository_config(config_dir: Path) -> None:
    code, out, err = run(config_dir)
    assert code == 0, err
    assert json.loads(out) == {"include": [
        {"member": "staging", "cloud": "gcp", "terraform": "gcp/staging",
         "kubernetes_version": "1.27", "staging": True, "drained": False,
         "project": "binderhub-288415", "location": "us-central1", "cluster": "staging"},
        {"member": "gke", "cloud": "gcp", "terraform": "gcp/prod",
         "kubernetes_version": "1.27", "staging": False, "drained": False,
         "project": "binderhub-288415", "location": "us-central1", "cluster": "prod"},
        {"member": "ovh2", "cloud": "kubeconfig", "terraform": "",
         "kubernetes_version": "1.26", "staging": False, "drained": False,
         "kubeconfig": "ovh2-kubeconfig.yml"},
        {"member": "curvenote", "cloud": "aws", "terraform": "aws/curvenote",
         "kubernetes_version": "1.28", "staging": False, "drained": False,
         "region": "us-east-2", "cluster": "binderhub"},
    ]}


def test_unrouted_members_come_first_external_never(config_dir: Path, edit: Change) -> None:
    # a second unrouted member declared last still comes before every routed one
    edit("federation.yaml", "    cloud: aws\n    weight: 0\n",
         "    cloud: aws\n    routed: false\n    weight: 0\n")
    code, out, err = run(config_dir)
    assert code == 0, err
    entries = json.loads(out)["include"]
    assert [e["member"] for e in entries] == ["staging", "curvenote", "gke", "ovh2"]
    assert [e["staging"] for e in entries] == [True, True, False, False]
    assert "gesis" not in out


def test_ramping_lists_members_with_a_ramp(config_dir: Path, edit: Change) -> None:
    code, out, err = run(config_dir, "--ramping")
    assert (code, out) == (0, '{"include":[]}\n'), err
    edit("federation.yaml", "    target_weight: 20 ",
         "    target_weight: 20\n    ramp:\n      steps: [1, 5, 10.5]\n      step: 2\n"
         "      to_weight: 20\n    #")
    code, out, err = run(config_dir, "--ramping")
    assert code == 0, err
    (entry,) = json.loads(out)["include"]
    assert entry["member"] == "curvenote"
    assert (entry["step"], entry["steps"], entry["share"]) == (3, 3, 10.5)
    assert entry["redirector"]["member"] == "gke"  # a ramp publishes to the redirector's cluster
    assert entry["redirector"]["cloud"] == "gcp"
    assert entry["redirector_url"] == "https://mybinder.org"


@pytest.mark.parametrize("other", [["--changed-since", "HEAD"], ["--terraform"]])
def test_ramping_is_exclusive(config_dir: Path, other: list[str]) -> None:
    code, out, err = run(config_dir, "--ramping", *other)
    assert code == 2 and out == ""
    assert "cannot be combined" in err


def test_terraform_matrix_is_members_with_a_stack(config_dir: Path) -> None:
    code, out, err = run(config_dir, "--terraform")
    assert code == 0, err
    assert members_of(out) == ["staging", "gke", "curvenote"]


# --- --changed-since, in a real git repository ----------------------------------------------


def test_nothing_changed_gives_an_empty_matrix(repo: Path, config_dir: Path) -> None:
    assert changed(config_dir) == []


def test_member_values_and_secrets(config_dir: Path, change: Change) -> None:
    change("config/values/curvenote.yaml", "", "\n# a comment is a change too\n")
    assert changed(config_dir) == ["curvenote"]
    change("config/secrets/values/ovh2.yaml", "", "binderhub: {}\n")
    assert changed(config_dir) == ["ovh2", "curvenote"]


def test_example_secrets_and_docs_change_nothing(config_dir: Path, change: Change) -> None:
    change("config/secrets/values/ovh2.example.yaml", "", "\n# documented\n")
    change("config/secrets/README.md", "", "more\n")
    assert changed(config_dir) == []


def test_generated_outputs_and_kubeconfig(config_dir: Path, change: Change) -> None:
    change("config/generated/curvenote.terraform.json", "", "{}\n")
    change("config/secrets/ovh2-kubeconfig.yml", "", "apiVersion: v1\n")
    assert changed(config_dir) == ["ovh2", "curvenote"]


@pytest.mark.parametrize("path", [
    "config/values/common.yaml",
    "config/secrets/values/common.yaml",
    "federation_deploy/__init__.py",
    "federation_deploy/charts/new.txt",
    "pyproject.toml",
])
def test_common_values_or_package_mean_every_member(
    config_dir: Path, change: Change, path: str
) -> None:
    change(path, "", "\n# changed\n")
    assert changed(config_dir) == ["staging", "gke", "ovh2", "curvenote"]


def test_chart_pin_in_federation_yaml_changes_that_member(
    config_dir: Path, change: Change
) -> None:
    change("config/federation.yaml", f"    version: {HELPER}\n", "    version: 0.0.1\n")
    assert changed(config_dir) == ["curvenote"]


def test_a_shared_chart_pin_changes_every_member_using_it(
    config_dir: Path, change: Change
) -> None:
    binderhub = pinned("binderhub")
    change("config/federation.yaml", f"    version: {binderhub}\n", "    version: 9.9.9\n")
    code, out, err = run(config_dir, "--changed-since", "base")
    assert code == 0, err
    assert members_of(out) == ["staging", "gke", "ovh2", "curvenote"]
    assert "chart binderhub changed (release binderhub)" in err


def test_a_member_overriding_the_version_is_spared_by_a_bump(
    repo: Path, config_dir: Path, change: Change
) -> None:
    # staging first: staging pins its own binderhub; a bump of the table moves the others
    change("config/federation.yaml", "        chart: binderhub\n        namespace: staging\n",
           "        chart: binderhub\n        version: 9.9.10\n        namespace: staging\n")
    assert changed(config_dir) == ["staging"]
    git(repo, "tag", "--force", "base")
    change("config/federation.yaml", f"    version: {pinned('binderhub')}\n",
           "    version: 9.9.9\n")
    assert changed(config_dir) == ["gke", "ovh2", "curvenote"]


def test_comments_in_federation_yaml_change_nothing(config_dir: Path, change: Change) -> None:
    change("config/federation.yaml", "# mybinder.org", "# the mybinder.org")
    assert changed(config_dir) == []


def test_weight_change_redeploys_the_redirector_member_only(
    config_dir: Path, change: Change
) -> None:
    # a ramp step must not redeploy the member; the redirector's hosts live on gke
    change("config/federation.yaml", "    weight: 0\n", "    weight: 3\n")
    code, out, err = run(config_dir, "--changed-since", "base")
    assert code == 0, err
    assert members_of(out) == ["gke"]
    assert "member curvenote routing changed (weight)" in err


def test_a_ramps_final_weight_redeploys_the_redirector_member_only(
    repo: Path, config_dir: Path, change: Change
) -> None:
    # the ramp's to_weight is published as the host's final_weight (values.redirector_config)
    change("config/federation.yaml", "    weight: 0\n",
           "    weight: 1.0101\n    ramp:\n      steps: [1, 100]\n      step: 0\n"
           "      to_weight: 20\n      hold: 30m\n")
    git(repo, "tag", "--force", "base")
    change("config/federation.yaml", "      to_weight: 20\n", "      to_weight: 30\n")
    code, out, err = run(config_dir, "--changed-since", "base")
    assert code == 0, err
    assert members_of(out) == ["gke"]
    assert "member curvenote routing changed (ramp)" in err


DRAINED_OVH2 = ("    weight: 15\n",
                "    weight: 0\n    drained:\n      reason: quota exceeded\n"
                "      since: '2024-05-01T12:00:00Z'\n      previous_weight: 15\n")


def test_drained_member_is_flagged_and_still_deployed(config_dir: Path, edit: Change) -> None:
    edit("federation.yaml", *DRAINED_OVH2)
    code, out, err = run(config_dir)
    assert code == 0, err
    entries = {e["member"]: e for e in json.loads(out)["include"]}
    assert entries["ovh2"]["drained"] is True  # CD still deploys it: that is how it is fixed
    assert [n for n, e in entries.items() if e["drained"]] == ["ovh2"]


def commit_all(repo: Path, tag: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", tag)
    git(repo, "tag", "--force", tag)


def test_drain_and_restore_redeploy_the_redirector_member_only(
    repo: Path, config_dir: Path
) -> None:
    # a drain, written as the tool writes it (weights and `generation:` one more), changes
    # weights only: published by deploying the redirector's member (gke)
    drain_member(load_federation(config_dir), "ovh2", "quota exceeded", lambda f: None,
                 clock=AT)
    commit_all(repo, "drained")
    code, out, err = run(config_dir, "--changed-since", "base")
    assert code == 0, err
    assert members_of(out) == ["gke"]
    assert "gke: config/federation.yaml: generation changed" in err
    restore_member(load_federation(config_dir), "ovh2", lambda f: None, clock=AT)
    commit_all(repo, "restored")
    code, out, err = run(config_dir, "--changed-since", "drained")
    assert (code, members_of(out)) == (0, ["gke"]), err


def test_a_generation_alone_redeploys_the_redirector_member_only(
    repo: Path, config_dir: Path
) -> None:
    # what `traffic prime` or a ramp step writes besides the members: the generation is in
    # the redirector's config.json, nowhere else
    text = (config_dir / "federation.yaml").read_text()
    (config_dir / "federation.yaml").write_text(text.replace("generation: 0", "generation: 7"))
    commit_all(repo, "generation")
    code, out, err = run(config_dir, "--changed-since", "base")
    assert (code, members_of(out)) == (0, ["gke"]), err
    assert "generation changed" in err


def test_freeze_and_unfreeze_redeploy_no_member(repo: Path, config_dir: Path) -> None:
    freezing.freeze(load_federation(config_dir), "conference", "2d", "ada",
                    runner=RecordingRunner(), clock=AT)
    commit_all(repo, "frozen")
    code, out, err = run(config_dir, "--changed-since", "base")
    assert (code, members_of(out)) == (0, []), err
    unfreeze(load_federation(config_dir), clock=AT)
    commit_all(repo, "unfrozen")
    code, out, err = run(config_dir, "--changed-since", "frozen")
    assert (code, members_of(out)) == (0, []), err


def test_a_rollout_redeploys_the_members_whose_version_changes_and_the_redirector(
    repo: Path, config_dir: Path, change: Change
) -> None:
    pin = load_federation(config_dir).chart("binderhub").version
    change("config/federation.yaml", "members:",
           f"rollout:\n  chart: binderhub\n  from: 0.9.0\n  to: {pin}\n  ring: 0\n"
           "  upgraded: []\nmembers:")
    git(repo, "tag", "--force", "base")
    # ring 0 upgraded staging: staging's version changes, no one else's
    change("config/federation.yaml", "  upgraded: []", "  upgraded: [staging]")
    code, out, err = run(config_dir, "--changed-since", "base")
    assert (code, members_of(out)) == (0, ["staging", "gke"]), err
    assert "staging: config/federation.yaml: rollout changed (the version of release " \
        "binderhub)" in err
    git(repo, "tag", "--force", "base")
    # ring 1 starts: only the versions the redirector accepts change
    change("config/federation.yaml", "  ring: 0", "  ring: 1")
    code, out, err = run(config_dir, "--changed-since", "base")
    assert (code, members_of(out)) == (0, ["gke"]), err


def test_notifications_redeploy_no_member(repo: Path, config_dir: Path, change: Change) -> None:
    change("config/federation.yaml", "members:",
           "notifications:\n  format: slack\nmembers:")
    assert changed(config_dir) == []


def test_a_paused_ramp_is_left_out_of_the_ramping_matrix(config_dir: Path, edit: Change) -> None:
    edit("federation.yaml", "    target_weight: 20 ",
         "    target_weight: 20\n    ramp:\n      steps: [1, 5]\n      step: 0\n"
         "      to_weight: 20\n    drained:\n      reason: outage\n"
         "      since: '2024-05-01T12:00:00Z'\n      previous_weight: 0\n    #")
    code, out, err = run(config_dir, "--ramping")
    assert (code, out) == (0, '{"include":[]}\n'), err
    assert "ramps paused by a drain (left out): curvenote" in err


def test_redirector_matrix_names_its_member_and_url(config_dir: Path) -> None:
    code, out, err = run(config_dir, "--redirector")
    assert code == 0, err
    (entry,) = json.loads(out)["include"]
    assert entry["redirector"]["member"] == "gke" and entry["redirector"]["cloud"] == "gcp"
    assert entry["redirector_url"] == "https://mybinder.org"
    code, _, err = run(config_dir, "--redirector", "--ramping")
    assert code == 2 and "cannot be combined" in err


def test_external_member_weight_redeploys_the_redirector(config_dir: Path, change: Change) -> None:
    change("config/federation.yaml", "    weight: 25\n", "    weight: 20\n")
    assert changed(config_dir) == ["gke"]


def test_unrouted_member_url_is_not_a_routing_change(config_dir: Path, change: Change) -> None:
    change("config/federation.yaml", "https://gke.staging.mybinder.org",
           "https://staging.mybinder.org")
    assert changed(config_dir) == ["staging"]


@pytest.mark.parametrize(("old", "new"), [
    ("  load_balancer: rendezvous", "  load_balancer: random"),
    ("  version: 1.11.4", "  version: 1.11.5"),
])
def test_redirector_or_terraform_version_mean_every_member(
    config_dir: Path, change: Change, old: str, new: str
) -> None:
    change("config/federation.yaml", old, new)
    assert changed(config_dir) == ["staging", "gke", "ovh2", "curvenote"]


def test_new_member_and_the_redirector(config_dir: Path, change: Change) -> None:
    change("config/federation.yaml", "", (
        "  hetzner:\n    url: https://hetzner.mybinder.org\n    cloud: kubeconfig\n"
        "    weight: 0\n    cluster:\n      kubeconfig: hetzner.yml\n"
    ))
    assert changed(config_dir) == ["gke", "hetzner"]


def test_terraform_stack_and_modules(config_dir: Path, change: Change) -> None:
    change("terraform/aws/curvenote/main.tf", "", "\n# changed\n")
    assert changed(config_dir) == ["curvenote"]
    git(config_dir.parent, "tag", "--force", "base")
    change("terraform/gcp/modules/gke/main.tf", "", "# a module\n")
    assert changed(config_dir) == ["staging", "gke"]
    git(config_dir.parent, "tag", "--force", "base")
    change("terraform/aws/bootstrap/main.tf", "", "\n# the state bucket, no member\n")
    assert changed(config_dir) == []


def test_aws_module_means_aws_stacks(config_dir: Path, change: Change) -> None:
    change("terraform/aws/modules/binderhub-eks/extra.tf", "", "# changed\n")
    assert changed(config_dir) == ["curvenote"]


def test_terraform_changes_only(config_dir: Path, change: Change) -> None:
    change("config/values/curvenote.yaml", "", "\n# values are not planned\n")
    change("config/federation.yaml", "    weight: 0\n", "    weight: 3\n")
    change("config/federation.yaml", "  load_balancer: rendezvous", "  load_balancer: random")
    change("config/federation.yaml", f"    version: {HELPER}\n", "    version: 0.0.1\n")
    code, out, err = run(config_dir, "--changed-since", "base", "--terraform")
    assert (code, out) == (0, '{"include":[]}\n'), err
    change("terraform/gcp/staging/versions.tf", "", "\n# changed\n")
    change("config/federation.yaml", "        registry_url: binderhub.registry.url",
           "        registry: binderhub.registry.url")
    code, out, err = run(config_dir, "--changed-since", "base", "--terraform")
    assert code == 0, err
    assert members_of(out) == ["staging", "curvenote"]


def test_terraform_pin_means_every_stack(config_dir: Path, change: Change) -> None:
    change("config/federation.yaml", "  version: 1.11.4", "  version: 1.11.5")
    code, out, err = run(config_dir, "--changed-since", "base", "--terraform")
    assert code == 0, err
    assert members_of(out) == ["staging", "gke", "curvenote"]


def test_ref_without_federation_yaml_means_every_member(repo: Path, config_dir: Path) -> None:
    git(repo, "checkout", "--quiet", "--orphan", "empty")
    git(repo, "rm", "-r", "--quiet", "--cached", ".")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "empty")
    git(repo, "tag", "empty")
    git(repo, "checkout", "--quiet", "--force", "main")
    code, out, err = run(config_dir, "--changed-since", "empty")
    assert code == 0, err
    assert members_of(out) == ["staging", "gke", "ovh2", "curvenote"]


def test_uncommitted_changes_are_not_counted(repo: Path, config_dir: Path) -> None:
    (config_dir / "values" / "curvenote.yaml").write_text("binderhub: {}\n")
    assert changed(config_dir) == []


@pytest.mark.parametrize("ref", ["no-such-ref", "-p", "base~5"])
def test_unknown_ref_is_a_usage_error(repo: Path, config_dir: Path, ref: str) -> None:
    code, out, err = run(config_dir, "--changed-since", ref)
    assert code == 2 and out == ""
    assert "git revision" in err and ref in err


def test_outside_a_git_repository_is_a_usage_error(config_dir: Path) -> None:
    env = {"GIT_CEILING_DIRECTORIES": str(config_dir.parent.parent)}
    result = CliRunner(env=env).invoke(
        cli, ["--config-dir", str(config_dir), "ci-matrix", "--changed-since", "HEAD"])
    assert result.exit_code == 2
    assert "needs a git repository" in result.stderr


# --- the pure mapping -----------------------------------------------------------------------


def test_affected_members_pure(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    layout = RepoLayout(root=config_dir.parent, config="config", terraform="terraform")
    reasons = affected_members(fed, ["config/values/gke.yaml", "README.md"], layout)
    assert reasons == {"gke": ["config/values/gke.yaml changed"]}
    # federation.yaml unreadable at the old revision: every deployable member
    everyone = affected_members(fed, ["config/federation.yaml"], layout, None, {"members": {}})
    assert list(everyone) == ["staging", "gke", "ovh2", "curvenote"]
    assert list(build_matrix(fed, only=["curvenote", "gesis"])["include"][0].values())[0] == (
        "curvenote")
