"""plan: what a merge would change per member, on a real git history of the fixture federation.

The pull request below changes a value, bumps a chart, moves a weight, adds a member and
changes a secret; its Markdown comment must equal tests/commands/golden/plan.md. After a
deliberate change of the report or of the fixture federation, regenerate the golden file with
`UPDATE_GOLDEN=1 .venv/bin/pytest -q -n 0 tests/commands/test_plan.py` and review its diff.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands.plan import CREDENTIAL_VARIABLES, _failure
from federation_deploy.config.gitcrypt import GIT_CRYPT_MAGIC
from federation_deploy.errors import ToolError
from federation_deploy.review.report import MARKER
from tests.helpers.pins import pinned

GOLDEN = Path(__file__).parent / "golden" / "plan.md"
# fixed names and dates: the same history gives the same commits
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}
AUTOSCALER = pinned("cluster-autoscaler")
BUMPED = AUTOSCALER + "-bumped"  # a version no repository has: plan never asks one
OLD_SECRET = "hunter2-old-registry-password"
NEW_SECRET = "hunter2-new-registry-password"
NEW_MEMBER = """
  # a new member, at weight 0 until a ramp
  hetzner:
    url: https://hetzner.mybinder.org
    cloud: kubeconfig
    weight: 0
    cluster:
      kubeconfig: hetzner-kubeconfig.yml
    releases:
      - name: binderhub
        chart: binderhub
        namespace: hetzner
"""


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, text=True,
                          capture_output=True, check=True)
    return proc.stdout.strip()


Edit = Callable[[str, str, str], None]


@pytest.fixture
def repo(config_dir: Path) -> Path:
    """A git repository around the copied fixture config and terraform, with a committed
    secret values file (as a git-crypt repository unlocked by CI has), on branch main."""
    root = config_dir.parent
    secret = config_dir / "secrets" / "values" / "gke.yaml"
    secret.write_text(f"binderhub:\n  registry:\n    password: {OLD_SECRET}\n"
                      "    username: _json_key\n")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "base")
    git(root, "checkout", "--quiet", "-b", "pr")
    return root


@pytest.fixture
def edit(repo: Path) -> Edit:
    """Replace text in a file of the repository (append with old=""), not committed yet."""

    def _edit(relative: str, old: str, new: str) -> None:
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text() if path.exists() else ""
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1) if old else text + new)

    return _edit


def commit(repo: Path, message: str = "change") -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def plan(config_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "plan", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def the_pull_request(edit: Edit, repo: Path) -> str:
    edit("config/values/gke.yaml", "pod_quota: 300", "pod_quota: 400")  # a values change
    edit("config/federation.yaml", f"version: {AUTOSCALER}", f"version: {BUMPED}")  # a bump
    edit("config/federation.yaml", "    weight: 15\n", "    weight: 20\n")  # a weight change
    edit("config/federation.yaml", "", NEW_MEMBER)  # a new member
    edit("config/values/hetzner.yaml", "", "binderhub:\n  config:\n    BinderHub:\n"
         "      hub_url: https://hub.hetzner.mybinder.org\n")
    edit("config/secrets/values/gke.yaml", OLD_SECRET, NEW_SECRET)  # a secret change
    return commit(repo, "the pull request")


def test_the_pull_requests_changes_per_member(repo: Path, config_dir: Path,
                                              edit: Edit) -> None:
    the_pull_request(edit, repo)
    code, out, err = plan(config_dir, "--changed-since", "main")
    assert code == 0, err
    blocks = member_blocks(out)
    assert "config.BinderHub.pod_quota: 300 -> 400" in blocks["gke"]
    assert "registry.password: changed (secret)" in blocks["gke"]
    assert "federationRedirect.hosts.ovh2.weight: 15 -> 20" in blocks["gke"]
    assert (f"release cluster-autoscaler: changed chart cluster-autoscaler {AUTOSCALER} from "
            f"https://kubernetes.github.io/autoscaler -> cluster-autoscaler {BUMPED} from "
            "https://kubernetes.github.io/autoscaler") in blocks["curvenote"]
    assert "weight (share): 15 (15%) -> 20 (19.05%)" in blocks["ovh2"]
    assert blocks["hetzner"].startswith("hetzner (kubeconfig): added")
    assert "release binderhub: added" in blocks["hetzner"]
    assert "config.BinderHub.hub_url: - -> \"https://hub.hetzner.mybinder.org\"" \
        in blocks["hetzner"]
    assert blocks["staging"] == "staging (gcp): unchanged"
    # CD: the values, the chart and the redirector's hosts; the new member too
    assert out.rstrip().endswith(
        "CD order: staging, gke, ovh2, curvenote, hetzner; would deploy: gke, curvenote, hetzner\n"
        "  gke: config/federation.yaml: member hetzner added (the redirector's hosts) (+3 more)\n"
        "  curvenote: config/federation.yaml: chart cluster-autoscaler changed (release "
        "cluster-autoscaler)\n"
        "  hetzner: config/federation.yaml: member hetzner added (+1 more)")
    for text in (out, err):
        assert OLD_SECRET not in text and NEW_SECRET not in text


def member_blocks(table: str) -> dict[str, str]:
    """The table output's block of each member: its header line and the lines under it."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in table.splitlines()[1:]:
        if not line.startswith(" ") and "): " in line:
            current = blocks.setdefault(line.split(" ", 1)[0], [])
        elif not line.startswith(" "):
            current = None
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in blocks.items()}


def test_the_markdown_comment_matches_the_golden_file(repo: Path, config_dir: Path,
                                                      edit: Edit) -> None:
    base = git(repo, "rev-parse", "main")
    head = the_pull_request(edit, repo)
    code, out, err = plan(config_dir, "--changed-since", "main", "-o", "markdown")
    assert code == 0, err
    assert out.startswith(MARKER + "\n")
    assert "<details><summary><b>gke</b> (gcp): changed</summary>" in out
    assert OLD_SECRET not in out and NEW_SECRET not in out
    # the commits depend on the fixture's files (terraform/ included): named, not hashed
    body = out.replace(base[:12], "<REF>").replace(head[:12], "<HEAD>")
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(body)
    assert GOLDEN.exists(), "no golden file: run with UPDATE_GOLDEN=1"
    assert body == GOLDEN.read_text()


def test_json_and_the_exit_code(repo: Path, config_dir: Path, edit: Edit) -> None:
    code, out, _ = plan(config_dir, "--changed-since", "main", "--exit-code", "-o", "json")
    assert code == 0 and json.loads(out)["changed"] is False
    edit("config/secrets/values/gke.yaml", OLD_SECRET, NEW_SECRET)
    commit(repo)
    code, out, _ = plan(config_dir, "--changed-since", "main", "--exit-code", "-o", "json")
    assert code == 3
    data = json.loads(out)
    gke = next(m for m in data["members"] if m["name"] == "gke")
    binderhub = next(r for r in gke["releases"] if r["name"] == "binderhub")
    assert {"path": "registry.password", "kind": "changed", "secret": True, "before": None,
            "after": None} in binderhub["values"]
    assert {"path": "registry.username", "kind": "unchanged", "secret": True, "before": None,
            "after": None} in binderhub["values"]
    assert data["cd_members"] == ["gke"]
    assert OLD_SECRET not in out and NEW_SECRET not in out


def test_no_change_says_so(repo: Path, config_dir: Path) -> None:
    code, out, _ = plan(config_dir, "--changed-since", "main", "-o", "markdown", "--exit-code")
    assert code == 0
    assert "**No member changes.**" in out and "CD would deploy: no member" in out


def test_default_ref_is_the_merge_base_with_main(repo: Path, config_dir: Path,
                                                 edit: Edit) -> None:
    edit("config/values/gke.yaml", "pod_quota: 300", "pod_quota: 400")
    commit(repo, "the pull request")
    git(repo, "checkout", "--quiet", "main")  # main moves on after the branch point
    edit("config/values/ovh2.yaml", "", "# a later change on main\nbinderhub: {}\n")
    commit(repo, "main moves")
    git(repo, "checkout", "--quiet", "pr")
    code, out, err = plan(config_dir)
    assert code == 0, err
    assert out.startswith("plan: compared with merge base with main")
    blocks = member_blocks(out)
    assert "pod_quota: 300 -> 400" in blocks["gke"] and blocks["ovh2"].endswith("unchanged")


def test_uncommitted_changes_are_not_counted(repo: Path, config_dir: Path, edit: Edit) -> None:
    edit("config/values/gke.yaml", "pod_quota: 300", "pod_quota: 400")
    code, out, _ = plan(config_dir, "--changed-since", "main", "--exit-code")
    assert code == 0, out


def test_git_ignored_secrets_are_the_same_on_both_sides(repo: Path, config_dir: Path,
                                                        edit: Edit) -> None:
    # this repository's layout: config/secrets/ is git-ignored, so no merge changes it
    git(repo, "rm", "--quiet", "--cached", "config/secrets/values/gke.yaml")
    edit(".gitignore", "", "config/secrets/values/gke.yaml\n")
    commit(repo, "secrets out of git")
    edit("config/secrets/values/gke.yaml", OLD_SECRET, NEW_SECRET)  # never committed
    code, out, err = plan(config_dir, "--changed-since", "HEAD", "-o", "json", "--exit-code")
    assert code == 0, out
    gke = next(m for m in json.loads(out)["members"] if m["name"] == "gke")
    binderhub = next(r for r in gke["releases"] if r["name"] == "binderhub")
    assert {"path": "registry.password", "kind": "unchanged", "secret": True, "before": None,
            "after": None} in binderhub["values"]
    assert NEW_SECRET not in out + err and OLD_SECRET not in out + err


def test_git_crypt_locked_secrets_compared_by_blob(repo: Path, config_dir: Path) -> None:
    secret = config_dir / "secrets" / "values" / "gke.yaml"
    secret.write_bytes(GIT_CRYPT_MAGIC + b"ciphertext one")
    commit(repo, "locked at REF")
    git(repo, "tag", "locked")
    secret.write_bytes(GIT_CRYPT_MAGIC + b"ciphertext two")
    commit(repo, "locked at HEAD")
    code, out, err = plan(config_dir, "--changed-since", "locked")
    assert code == 0, err
    gke = member_blocks(out)["gke"]
    assert "secrets file secrets/values/gke.yaml: changed (locked)" in gke
    assert ("not computed: secret values: secrets/values/gke.yaml git-crypt locked; rendered "
            "with the stand-in on both sides") in gke


def test_unknown_ref_is_a_usage_error(repo: Path, config_dir: Path) -> None:
    code, _, err = plan(config_dir, "--changed-since", "no-such-branch")
    assert code == 2 and "unknown git revision 'no-such-branch'" in err


def test_outside_a_git_repository_is_a_usage_error(config_dir: Path) -> None:
    code, _, err = plan(config_dir)
    assert code == 2 and "not in a git repository" in err


def test_the_work_tree_is_left_alone(repo: Path, config_dir: Path, edit: Edit) -> None:
    edit("config/values/gke.yaml", "pod_quota: 300", "pod_quota: 400")
    commit(repo)
    before = git(repo, "status", "--porcelain", "--ignored")
    worktrees = git(repo, "worktree", "list")
    plan(config_dir, "--changed-since", "main")
    assert git(repo, "status", "--porcelain", "--ignored") == before
    assert git(repo, "worktree", "list") == worktrees


def test_crds_hooks_and_terraform_files(repo: Path, config_dir: Path, edit: Edit,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (n for names in CREDENTIAL_VARIABLES.values() for n in names):
        monkeypatch.delenv(name, raising=False)
    # curvenote's releases are the last cert-manager and ingress-nginx pair of the file
    cert_manager = ("      - name: cert-manager\n        chart: cert-manager\n"
                    "        namespace: cert-manager\n")
    nginx = "      - name: ingress-nginx\n"
    text = (config_dir / "federation.yaml").read_text()
    at = text.rindex(cert_manager + nginx)
    (config_dir / "federation.yaml").write_text(
        text[:at] + cert_manager + "        crds: https://example.org/cert-manager.crds.yaml\n"
        + text[at + len(cert_manager):])
    edit("config/federation.yaml", "      name: binderhub\n    terraform:",
         "      name: binderhub\n    hooks:\n"
         "      - {name: smoke-test, after: verify, argv: [\"true\"]}\n    terraform:")
    edit("terraform/aws/curvenote/main.tf", "", "\n# a reviewed change\n")
    commit(repo)
    code, out, err = plan(config_dir, "--changed-since", "main")
    assert code == 0, err
    curvenote = member_blocks(out)["curvenote"]
    assert "  release cert-manager: changed\n    crds: none -> " \
        "https://example.org/cert-manager.crds.yaml" in curvenote
    assert "  hook added smoke-test (after verify): true" in curvenote
    # terraform is opt-in: without --terraform-plan it is never run, credentials or not
    assert ("  terraform aws/curvenote: terraform/aws/curvenote/main.tf\n"
            "    plan: not run (pass --terraform-plan to plan the stack with terraform)"
            ) in curvenote
    assert "`federation-deploy plan --terraform-plan` runs it" in out
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")  # would have run terraform before
    code, out, err = plan(config_dir, "--changed-since", "main")
    assert "plan: not run (pass --terraform-plan" in member_blocks(out)["curvenote"]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    code, out, err = plan(config_dir, "--changed-since", "main", "--terraform-plan")
    assert ("  terraform aws/curvenote: terraform/aws/curvenote/main.tf\n"
            "    plan: not computed: no credentials") in member_blocks(out)["curvenote"]
    assert "not computed: terraform plan: not computed: no credentials" in out


def test_a_failed_terraform_plan_shows_terraforms_error() -> None:
    failed = ToolError(["terraform", "init"], 1, "", "\n│ Error: Failed to get existing "
                       "workspaces: S3 bucket \"mybinder-x-terraform-state\" does not exist.\n│\n",
                       summary="terraform init failed in aws/x")
    line = _failure(failed)
    assert line.startswith("terraform init failed in aws/x")
    assert "terraform: Error: Failed to get existing workspaces: S3 bucket" in line
    assert "\n" not in line


def test_an_invalid_head_config_is_named_as_in_the_repository(repo: Path, config_dir: Path,
                                                              edit: Edit) -> None:
    edit("config/federation.yaml", "    weight: 15\n", "    weight: lots\n")
    commit(repo)
    code, _, err = plan(config_dir, "--changed-since", "main")
    assert code == 2
    assert f"{repo}/config/federation.yaml:" in err and "federation-deploy-plan-" not in err


def test_short_secrets_leave_public_text_intact(repo: Path, config_dir: Path,
                                                edit: Edit) -> None:
    # secrets "a" and "b": the report is not censored by string matching (which blanked the
    # word "a" in a public value and the `<b>` of the comment); secret keys are reduced to
    # changed/unchanged by key path, and no secret-only value is printed
    secret = config_dir / "secrets" / "values" / "gke.yaml"
    secret.write_text(f"binderhub:\n  registry:\n    password: {OLD_SECRET}\n"
                      "    username: a\n    token: a\n")
    commit(repo, "short secrets")
    git(repo, "tag", "short")
    edit("config/values/gke.yaml", "pod_quota: 300",
         "pod_quota: 300\n      banner: mybinder.org is a public service")
    secret.write_text(f"binderhub:\n  registry:\n    password: {NEW_SECRET}\n"
                      "    username: a\n    token: b\n")
    commit(repo)
    code, out, err = plan(config_dir, "--changed-since", "short", "-o", "markdown")
    assert code == 0, err
    assert "<code>&quot;mybinder.org is a public service&quot;</code>" in out
    assert "<summary><b>gke</b> (gcp): changed</summary>" in out
    assert "***" not in out
    assert "<code>registry.token</code>: changed" in out
    assert "<code>registry.password</code>: changed" in out
    assert "2 unchanged" not in out and "1 unchanged" in out  # username
    for text in (out, err):
        assert OLD_SECRET not in text and NEW_SECRET not in text
    code, out, _ = plan(config_dir, "--changed-since", "short", "-o", "table")
    assert "registry.token: changed (secret)" in out and "***" not in out
    assert "banner: - -> \"mybinder.org is a public service\"" in out


def test_files_changed_without_a_render_change_count_as_a_change(repo: Path, config_dir: Path,
                                                                 edit: Edit) -> None:
    # gke's own file now also sets what common.yaml sets: the render is equal, but CD deploys
    # gke (its files changed); the report, the summary line and --exit-code agree on it
    edit("config/values/gke.yaml", "binderhub:\n  config:", "binderhub:\n  replicas: 2\n  config:")
    commit(repo)
    code, out, err = plan(config_dir, "--changed-since", "main", "--exit-code")
    assert code == 3
    assert "gke (gcp): changed\n" in out
    assert "  CD deploys it: its files changed; its rendered values did not" in out
    assert err.strip().splitlines()[-1] == "plan: 1 member(s) change (gke)"


def test_the_last_line_agrees_with_the_exit_code(repo: Path, config_dir: Path,
                                                edit: Edit) -> None:
    edit("config/federation.yaml", "generation: 0", "generation: 1")
    commit(repo)
    code, out, err = plan(config_dir, "--changed-since", "main", "--exit-code")
    last = err.strip().splitlines()[-1]
    # CD deploys the redirector's member on this change (its config.json carries the
    # generation): it changes, and so does federation.yaml
    assert code == 3 and last == ("plan: 1 member(s) change (gke); federation.yaml changes "
                                  "(generation changed)")
    code, out, err = plan(config_dir, "--changed-since", "HEAD", "--exit-code")
    assert code == 0 and err.strip().splitlines()[-1] == "plan: nothing changes"


def test_a_ref_whose_config_does_not_load_is_an_error_naming_it(repo: Path, config_dir: Path,
                                                                edit: Edit) -> None:
    edit("config/federation.yaml", "    weight: 15\n", "    weight: lots\n")
    commit(repo, "broken at REF")
    git(repo, "tag", "broken")
    edit("config/federation.yaml", "    weight: lots\n", "    weight: 15\n")
    commit(repo, "fixed")
    code, out, err = plan(config_dir, "--changed-since", "broken")
    assert code == 1 and out == ""  # no report of every member "added"
    assert "the config at broken (" in err and "does not load" in err
    assert "  config/federation.yaml:" in err and "members.ovh2.weight" in err
    assert "federation-deploy-plan-" not in err  # the export's temporary paths never show
