"""ci-matrix on the adopted fixture repository: the staging tier, the CD order, and which
members a change of the repository's own files (values, charts, crds, hooks, secrets) deploys,
in a real git repository made by the test."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from federation_deploy.adopt.federation import adopt_repository
from federation_deploy.adopt.sources import read_cd_workflow
from federation_deploy.cli.main import cli
from federation_deploy.config.ci_matrix import glob_matches
from tests.adopt.test_adopt import CD_ORDER
from tests.config.test_ci_matrix import git

Tweak = Callable[[dict[str, Any]], None]


def invoke(repo: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config-dir", str(repo), "ci-matrix", *args])


def entries(repo: Path, *args: str) -> list[dict[str, Any]]:
    result = invoke(repo, *args)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1, "one line, for $GITHUB_OUTPUT"
    include = json.loads(result.stdout)["include"]
    assert isinstance(include, list)
    return include


def tweak_federation(repo: Path, tweak: Tweak) -> None:
    path = repo / "federation.yaml"
    data = yaml.safe_load(path.read_text())
    tweak(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def adopted(deploy_repo: Path) -> Path:
    """The fixture copy after `adopt` (no chart is built: ci-matrix needs none)."""
    result = CliRunner().invoke(cli, ["adopt", str(deploy_repo)])
    assert result.exit_code == 0, result.output
    return deploy_repo


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)


HOOKS = [
    {"name": "network-bans", "after": "auth",
     "argv": [sys.executable, "secrets/ban.py", "--allowed=secrets/allowed_ips.txt"]},
    {"name": "post-deploy-tests", "after": "verify",
     "argv": ["pytest", "--release={member}", "tests/"]},
    {"name": "notes", "after": "verify", "argv": ["echo", "{member}.txt", "."]},
]


@pytest.fixture
def repo(adopted: Path) -> Path:
    """The adopted repository as a git repository tagged `base`, with a crds file of its own
    for staging's cert-manager, hooks on prod, and a post-deploy test directory."""
    (adopted / "crds").mkdir()
    (adopted / "crds" / "cert-manager.crds.yaml").write_text("# CRDs\n")
    (adopted / "tests").mkdir()
    (adopted / "tests" / "test_launch.py").write_text("def test_launch():\n    pass\n")
    (adopted / "prod.txt").write_text("a file named like a hook argument, not named by it\n")

    def add(data: dict[str, Any]) -> None:
        for member in data["members"].values():
            member.pop("hooks", None)  # adopt's (every member's bans and tests): prod's only
        data["members"]["prod"]["hooks"] = HOOKS
        releases = data["members"]["staging"]["releases"]
        cert_manager = next(r for r in releases if r["name"] == "cert-manager")
        cert_manager["crds"] = "crds/cert-manager.crds.yaml"

    tweak_federation(adopted, add)
    git(adopted, "init", "--quiet", "--initial-branch=main")
    commit_all(adopted, "base")
    git(adopted, "tag", "base")
    return adopted


Change = Callable[[str], None]


@pytest.fixture
def change(repo: Path) -> Change:
    """Append a comment to (or create) a file of the repository and commit it."""

    def _change(relative: str) -> None:
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write("\n# changed\n")
        commit_all(repo, f"change {relative}")

    return _change


def changed(repo: Path) -> list[str]:
    return [e["member"] for e in entries(repo, "--changed-since", "base")]


# --- the staging tier and the CD order ------------------------------------------------------


def test_the_staging_tier_is_cd_ymls_first_job_not_every_unrouted_member(adopted: Path) -> None:
    # prod is `routed: false` (it runs the redirector, it is no host of it): not staging
    assert yaml.safe_load((adopted / "federation.yaml").read_text())["ci"] == {
        "order": CD_ORDER, "staging": ["staging"]}
    assert [(e["member"], e["staging"]) for e in entries(adopted)] == [
        ("staging", True), ("prod", False), ("hetzner-2i2c", False), ("hetzner-gesis", False),
        ("bids-ovh", False)]


def test_without_ci_staging_the_redirectors_member_is_not_staging(adopted: Path) -> None:
    def drop(data: dict[str, Any]) -> None:
        del data["ci"]
        data["members"] = dict(reversed(list(data["members"].items())))

    tweak_federation(adopted, drop)
    # default: unrouted and not running the redirector (staging) first; prod, unrouted too,
    # follows in config order with the routed members
    assert [(e["member"], e["staging"]) for e in entries(adopted)] == [
        ("staging", True), ("bids-ovh", False), ("hetzner-gesis", False),
        ("hetzner-2i2c", False), ("prod", False)]


def test_ci_staging_names_the_tier_and_orders_the_unlisted(adopted: Path) -> None:
    def two(data: dict[str, Any]) -> None:
        data["ci"] = {"staging": ["bids-ovh", "staging"]}

    tweak_federation(adopted, two)
    # without ci.order: the tier first (config order), then the rest
    assert [(e["member"], e["staging"]) for e in entries(adopted)] == [
        ("staging", True), ("bids-ovh", True), ("prod", False), ("hetzner-2i2c", False),
        ("hetzner-gesis", False)]

    def none(data: dict[str, Any]) -> None:
        data["ci"] = {"order": CD_ORDER, "staging": []}

    tweak_federation(adopted, none)
    assert [e["staging"] for e in entries(adopted)] == [False] * 5


@pytest.mark.parametrize(("staging", "message"), [
    (["staging", "nowhere"], "ci.staging[1]: unknown member 'nowhere'"),
    (["staging", "staging"], "ci.staging[1]: staging is listed twice"),
    ("staging", "ci.staging: expected a list of member names"),
])
def test_bad_ci_staging_is_a_config_error(adopted: Path, staging: Any, message: str) -> None:
    def bad(data: dict[str, Any]) -> None:
        data["ci"]["staging"] = staging

    tweak_federation(adopted, bad)
    result = invoke(adopted)
    assert result.exit_code == 2, result.output
    assert "federation.yaml:" in result.stderr and message in result.stderr


def write_cd(repo: Path, jobs: dict[str, Any]) -> Path:
    path = repo / ".github" / "workflows" / "cd.yml"
    path.write_text(yaml.safe_dump({"name": "CD", "jobs": jobs}))
    return path


def job(*members: str, needs: str | list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"runs-on": "ubuntu-latest", "strategy": {"matrix": {"include": [
        {"federation_member": m} for m in members]}}, "steps": [{"run": "true"}]}
    if needs is not None:
        body["needs"] = needs
    return body


def test_adopt_reads_the_staging_job_only_when_the_others_wait_for_it(
    deploy_repo: Path,
) -> None:
    # written out of order: the tier is the first job in `needs` order, found transitively
    path = write_cd(deploy_repo, {
        "prod": job("prod", "hetzner-2i2c", needs="check"),
        "check": {"runs-on": "ubuntu-latest", "needs": ["stage"], "steps": [{"run": "true"}]},
        "stage": job("staging", "bids-ovh"),
    })
    cd = read_cd_workflow(path, "cd.yml")
    assert (cd.order, cd.staging) == (["staging", "bids-ovh", "prod", "hetzner-2i2c"],
                                      ["staging", "bids-ovh"])
    assert adopt_repository(deploy_repo).document["ci"]["staging"] == ["staging", "bids-ovh"]
    # two jobs side by side: nothing is a staging tier, and adopt writes none
    write_cd(deploy_repo, {"a": job("staging"), "b": job("prod")})
    assert read_cd_workflow(path, "cd.yml").staging == []
    ci = adopt_repository(deploy_repo).document["ci"]
    assert ci["order"] == ["staging", "prod"] and "staging" not in ci
    # deploy.py's other members, which this cd.yml does not deploy, are left out of CD
    assert ci["manual"] == ["hetzner-2i2c", "hetzner-gesis", "bids-ovh"]
    # one job for everyone: no tier either
    write_cd(deploy_repo, {"all": job("staging", "prod")})
    assert "staging" not in adopt_repository(deploy_repo).document["ci"]


# --- --changed-since on the adopted layout --------------------------------------------------


def test_nothing_changed(repo: Path) -> None:
    assert changed(repo) == []


@pytest.mark.parametrize(("path", "members"), [
    # a member's values file, and its git-crypt secrets (existing or new: patterns, not files)
    ("config/prod.yaml", ["prod"]),
    ("secrets/config/hetzner-2i2c.yaml", ["hetzner-2i2c"]),
    ("secrets/config/staging.yaml", ["staging"]),
    # the common layers: every member's list names them; a new file matches the glob too
    ("config/common/10-images.yaml", CD_ORDER),
    ("config/common/30-new.yaml", CD_ORDER),
    ("secrets/config/common/common.yaml", CD_ORDER),
    ("config/cert-manager.yaml", CD_ORDER),
    # a release's own list, {member} substituted
    ("system-config/kube-system/hetzner-gesis.yaml", ["hetzner-gesis"]),
    # local chart directories: every member with a release of that chart
    ("mybinder/Chart.yaml", CD_ORDER),
    ("mybinder/values.yaml", CD_ORDER),
    ("mybinder/templates/federation-redirect.yaml", CD_ORDER),
    ("mybinder-kube-system/values.yaml", ["hetzner-gesis"]),
    # a crds file (a path, not a URL)
    ("crds/cert-manager.crds.yaml", ["staging"]),
    # files and directories a hook names (also as --opt=PATH)
    ("secrets/ban.py", ["prod"]),
    ("secrets/allowed_ips.txt", ["prod"]),
    ("tests/test_launch.py", ["prod"]),
    ("tests/new/test_more.py", ["prod"]),
    ("prod.txt", ["prod"]),  # `{member}.txt`, placeholders filled as the hook runs them
    # a kubeconfig
    ("secrets/staging-kubeconfig.yaml", ["staging"]),
])
def test_a_changed_file_deploys_the_members_reading_it(
    repo: Path, change: Change, path: str, members: list[str]
) -> None:
    change(path)
    assert changed(repo) == members


@pytest.mark.parametrize("path", [
    "deploy.py", ".github/workflows/cd.yml", "README.md", "cert-manager.env",
    "config/localhost.yaml",  # not an adopted member
    "config/test-secrets.yaml",  # the stand-in: CD deploys with the real secrets
    "config/common/sub/10-deeper.yaml",  # `*` does not cross a directory
    "secrets/config/prod.example.yaml",
    "notes.txt",  # a hook's `.` (the config directory) does not name every file
    "terraform/gcp/prod/main.tf",  # no member has a terraform stack here
])
def test_other_files_deploy_nothing(repo: Path, change: Change, path: str) -> None:
    change(path)
    assert changed(repo) == []


def test_reasons_name_the_chart_crds_and_hook(repo: Path, change: Change) -> None:
    for path in ("mybinder/Chart.yaml", "crds/cert-manager.crds.yaml", "secrets/ban.py"):
        change(path)
    result = invoke(repo, "--changed-since", "base")
    assert result.exit_code == 0, result.output
    assert [e["member"] for e in json.loads(result.stdout)["include"]] == CD_ORDER
    assert "3 files changed since base" in result.stderr
    assert "staging: crds/cert-manager.crds.yaml changed (crds of release cert-manager) " \
           "(+1 more)" in result.stderr
    assert "prod: mybinder/Chart.yaml changed (chart of release mybinder) (+1 more)" \
        in result.stderr
    assert "bids-ovh: mybinder/Chart.yaml changed (chart of release mybinder)\n" \
        in result.stderr


def test_federation_yaml_changes_as_in_the_config_layout(repo: Path) -> None:
    def weight(data: dict[str, Any]) -> None:
        data["members"]["hetzner-gesis"]["weight"] = 35

    tweak_federation(repo, weight)
    commit_all(repo, "weight")
    # a weight is routing only: the redirector's member publishes it
    assert changed(repo) == ["prod"]

    def values(data: dict[str, Any]) -> None:
        data["members"]["bids-ovh"]["releases"][-1]["values"].append(
            {"path": "config/bids-extra.yaml", "optional": True})

    tweak_federation(repo, values)
    commit_all(repo, "values")
    assert changed(repo) == ["prod", "bids-ovh"]


# --- the glob matcher -----------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("config/common/*.yaml", "config/common/a.yaml", True),
    ("config/common/*.yaml", "config/common/a/b.yaml", False),
    ("config/common/*.yaml", "x/config/common/a.yaml", False),  # anchored at the root
    ("config/*.yaml", "config/.hidden.yaml", True),  # as Path.glob finds it
    ("config/**/*.yaml", "config/a.yaml", True),
    ("config/**/*.yaml", "config/a/b/c.yaml", True),
    ("mybinder/**", "mybinder/templates/x.yaml", True),
    ("mybinder/**", "mybinder-kube-system/Chart.yaml", False),
    ("secrets/config/[ab]*.yaml", "secrets/config/bids.yaml", True),
    ("a[[]1]/x", "a[1]/x", True),  # glob.escape'd names match themselves only
    ("a[[]1]/x", "a1/x", False),
    ("Config/*.yaml", "config/a.yaml", False),
])
def test_glob_matches(pattern: str, path: str, matches: bool) -> None:
    assert glob_matches(pattern, path) is matches
