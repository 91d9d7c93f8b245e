"""Issue 12's acceptance: the tool drives the adopted fixture repository as it is (validate,
render --without-secrets against deploy.py's own files, deploy --dry-run with the umbrella
chart's dependency built from a real helm repository, recorded deploy argv, ci-matrix)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from federation_deploy.actions.kube_auth import ClusterTools
from federation_deploy.cli.main import cli
from federation_deploy.commands import deploy as pipeline
from federation_deploy.config import load_federation
from federation_deploy.runner import Runner
from federation_deploy.values.render import render_member
from tests.adopt.conftest import FIXTURE, HelmRepo
from tests.adopt.test_adopt import CD_ORDER, deploy_py_config_files
from tests.commands.test_deploy import healthy
from tests.helpers.recording import Call, RecordingRunner

KUBE_TOOLS = ClusterTools(kubectl="kubectl")


def invoke(repo: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config-dir", str(repo), *args])


def helm_merge(base: Any, over: Any) -> Any:
    """Helm's merge, written again for the oracle: dicts deeply, lists and scalars replace,
    null deletes."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return over
    merged = dict(base)
    for key, value in over.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = helm_merge(merged.get(key), value)
    return merged


def expected_values(repo: Path, member: str, stand_in: str | None,
                    monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The merge of the files deploy.py passes for member, secrets excluded (the stand-in,
    if any, where the first secret file was)."""
    monkeypatch.chdir(repo)
    files = deploy_py_config_files(repo, member)
    merged: dict[str, Any] = {}
    placed = False
    for name in files:
        if name.startswith("secrets/"):
            if stand_in and not placed:
                merged = helm_merge(merged, yaml.safe_load((repo / stand_in).read_text()))
                placed = True
            continue
        merged = helm_merge(merged, yaml.safe_load((repo / name).read_text()) or {})
    return merged


def rendered_mybinder(repo: Path, member: str) -> tuple[dict[str, Any], str]:
    result = invoke(repo, "render", member, "--release", "mybinder", "--without-secrets")
    assert result.exit_code == 0, result.output
    values = yaml.safe_load(result.stdout)
    assert isinstance(values, dict)
    return values, result.stderr


def test_validate_passes_and_warns_about_the_locked_file(adopted: Path) -> None:
    result = invoke(adopted, "validate")
    assert result.exit_code == 0, result.output
    assert "bids-ovh.yaml" in result.stderr and "locked with git-crypt" in result.stderr
    assert "config valid: 5 members" in result.stderr
    # said once, in one line, however many files and members (issue 30)
    for flags in ((), ("--without-secrets",)):
        result = invoke(adopted, "validate", *flags)
        assert result.exit_code == 0, result.output
        lines = result.stderr.splitlines()
        assert len([line for line in lines if "git-crypt" in line]) == 1, lines
        assert len([line for line in lines if "skipped" in line]) == (1 if flags else 0), lines


@pytest.mark.parametrize("stand_in", [True, False], ids=["stand-in", "no-stand-in"])
@pytest.mark.parametrize("member", CD_ORDER)
def test_render_without_secrets_is_deploy_py_merge(
    adopted: Path, member: str, stand_in: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not stand_in:
        path = adopted / "federation.yaml"
        data = yaml.safe_load(path.read_text())
        del data["secrets"]
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    values, stderr = rendered_mybinder(adopted, member)
    assert "without secrets: skipped secrets/config/common/common.yaml" in stderr
    assert ("config/test-secrets.yaml in their place" in stderr) is stand_in
    expected = expected_values(adopted, member,
                               "config/test-secrets.yaml" if stand_in else None, monkeypatch)
    if member != "prod":
        assert values == expected
        return
    # prod runs the federation's redirector: its block is generated from federation.yaml
    generated, fixture = values.pop("federationRedirect"), expected.pop("federationRedirect")
    assert values == expected
    assert set(generated["hosts"]) == set(fixture["hosts"])
    for name, host in fixture["hosts"].items():
        got = generated["hosts"][name]
        # the generated block replaces the file's hosts whole: prime only where it is true
        # (mybinder's redirector reads host.get("prime"))
        assert (got["url"], got["weight"], got.get("prime", False)) == (
            host["url"], host["weight"], host["prime"]), name
    assert generated["enabled"] is True and generated["host"] == "binder.example.org"


def test_the_more_specific_layer_wins(adopted: Path) -> None:
    # hetzner-2i2c: a common secret and the member's secret both set the registry password
    fed = load_federation(adopted)
    (mybinder,) = render_member(fed, "hetzner-2i2c", ["mybinder"])
    assert mybinder.values["binderhub"]["registry"]["password"] == \
        "hetzner-2i2c-registry-password"
    assert mybinder.redacted()["binderhub"]["registry"]["password"] == "<redacted>"
    # a member's plain value now beats a common secret (deploy.py's order)
    secret = adopted / "secrets" / "config" / "common" / "common.yaml"
    secret.write_text(secret.read_text() + "projectName: from-a-common-secret\n")
    (mybinder,) = render_member(load_federation(adopted), "hetzner-2i2c", ["mybinder"])
    assert mybinder.values["projectName"] == "hetzner-2i2c"
    (staging,) = render_member(load_federation(adopted), "staging", ["mybinder"])
    assert staging.values["projectName"] == "from-a-common-secret"  # no plain value there


def test_a_locked_file_stops_the_commands_that_need_it(adopted: Path) -> None:
    for args in (["render", "bids-ovh"], ["deploy", "bids-ovh", "--dry-run"]):
        result = invoke(adopted, *args)
        assert result.exit_code == 2, result.output
        assert "secrets/config/bids-ovh.yaml: locked with git-crypt: run git-crypt unlock" \
            in result.stderr
    # never parsed: the other members render, and without secrets bids-ovh does too
    assert invoke(adopted, "render", "hetzner-2i2c").exit_code == 0
    assert invoke(adopted, "render", "bids-ovh", "--without-secrets").exit_code == 0
    kubeconfig = adopted / "secrets" / "bids-ovh-kubeconfig.yaml"
    kubeconfig.write_bytes(b"\x00GITCRYPT\x00" + os.urandom(32))
    with pytest.raises(Exception, match="locked with git-crypt: run git-crypt unlock"):
        deploy_recorded(adopted, "bids-ovh", RecordingRunner(), stages=["auth"])


def test_deploy_names_every_locked_file_before_asking(
    adopted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no --yes, no terminal (CliRunner's stdin), not in CI: the question would be refused,
    # so an error about locked files here says it came first
    monkeypatch.delenv("CI", raising=False)
    result = invoke(adopted, "deploy", "bids-ovh")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        "error: locked by git-crypt: secrets/config/bids-ovh.yaml; run git-crypt unlock"), \
        result.stderr
    assert "invalid config" not in result.stderr and "confirmation" not in result.stderr
    # every locked file the deploy needs, in the order it would read them (auth first)
    kubeconfig = adopted / "secrets" / "bids-ovh-kubeconfig.yaml"
    kubeconfig.write_bytes(b"\x00GITCRYPT\x00" + os.urandom(32))
    result = invoke(adopted, "deploy", "bids-ovh")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        "error: locked by git-crypt: secrets/bids-ovh-kubeconfig.yaml, "
        "secrets/config/bids-ovh.yaml; run git-crypt unlock"), result.stderr
    # only what the chosen releases need: cert-manager reads no locked values file
    kubeconfig.write_text((FIXTURE / "secrets" / "bids-ovh-kubeconfig.yaml").read_text())
    result = invoke(adopted, "deploy", "bids-ovh", "--release", "cert-manager")
    assert result.exit_code == 2, result.output
    assert "needs confirmation: pass --yes" in result.stderr
    assert "locked" not in result.stderr
    # another member needs no locked file: the question comes (and is refused here)
    result = invoke(adopted, "deploy", "hetzner-2i2c")
    assert "needs confirmation: pass --yes" in result.stderr and "locked" not in result.stderr


@pytest.mark.helm
def test_dry_run_renders_the_umbrella_chart_with_its_dependency_built(
    adopted: Path, helm_repo: HelmRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the user's own helm setup: it must stay untouched
    user_repositories = tmp_path / "user-helm" / "repositories.yaml"
    monkeypatch.setenv("HELM_REPOSITORY_CONFIG", str(user_repositories))
    monkeypatch.setenv("FEDERATION_DEPLOY_HELM", helm_repo.helm)
    lock = (adopted / "mybinder" / "Chart.lock").read_text()
    for member, release, shown in (("hetzner-2i2c", "hetzner-2i2c", "kind: Deployment"),
                                   ("prod", "prod", "name: federation-redirect")):
        result = invoke(adopted, "deploy", member, "--dry-run", "--without-secrets",
                        "--release", "mybinder")
        assert result.exit_code == 0, result.output
        assert shown in result.stdout
        assert "helm dependency build" not in result.stdout
        assert f"namespace {release}" in result.stdout
    assert "name: hetzner-2i2c-binderhub" in invoke(
        adopted, "deploy", "hetzner-2i2c", "--dry-run", "--without-secrets", "--release",
        "mybinder").stdout
    # built in a private copy: the user's chart directory is never written
    assert not (adopted / "mybinder" / "charts").exists()
    assert (adopted / "mybinder" / "Chart.lock").read_text() == lock
    assert not user_repositories.exists()


@pytest.mark.helm
def test_a_chart_without_chart_lock_resolves_its_ranges_in_a_private_copy(
    adopted: Path, helm_repo: HelmRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mybinder.org-deploy git-ignores mybinder/Chart.lock: deploy updates the dependencies
    from Chart.yaml's ranges, in a copy, and says so; --update-dependencies writes it back."""
    monkeypatch.setenv("FEDERATION_DEPLOY_HELM", helm_repo.helm)
    lock = adopted / "mybinder" / "Chart.lock"
    lock.unlink()
    args = ["deploy", "staging", "--dry-run", "--without-secrets", "--release", "mybinder"]
    result = invoke(adopted, *args)
    assert result.exit_code == 0, result.output
    assert "name: staging-binderhub" in result.stdout  # the dependency was there
    assert "has no committed Chart.lock: its dependency versions are resolved from " \
        "Chart.yaml's ranges now" in result.stderr
    assert not lock.exists() and not (adopted / "mybinder" / "charts").exists()
    result = invoke(adopted, *args, "--update-dependencies")
    assert result.exit_code == 0, result.output
    assert lock.is_file() and "version: 0.1.0" in lock.read_text()
    assert "Chart.lock written (commit it)" in result.stderr
    assert not (adopted / "mybinder" / "charts").exists()


def deploy_recorded(repo: Path, member: str, runner: RecordingRunner,
                    **kwargs: Any) -> pipeline.DeployReport:
    fed = load_federation(repo)
    return pipeline.deploy_member(
        fed, pipeline.require_deployable(fed, member), runner, helm_executable="helm",
        tools=KUBE_TOOLS, verify_fetch=healthy, sleep=lambda _s: None, **kwargs)


def test_recorded_deploy_argv(adopted: Path, helm_repo: HelmRepo) -> None:
    runner = RecordingRunner()
    report = deploy_recorded(adopted, "hetzner-gesis", runner,
                             stages=["auth", "releases"])
    calls = runner.calls
    words = runner.words()
    kc = ["--kubeconfig", next(c for c in calls if c.tool == "kubectl").argv[-1]]
    chart = str((adopted / "mybinder").resolve())
    system = str((adopted / "mybinder-kube-system").resolve())
    crds = ("https://github.com/cert-manager/cert-manager/releases/download/v1.18.2/"
            "cert-manager.crds.yaml")
    add = next(c for c in calls if c.words[1:3] == ["repo", "add"])
    build = next(c for c in calls if c.words[1:3] == ["dependency", "build"])
    assert add.words == ["helm", "repo", "add", "dependency-0", helm_repo.url, "--force-update"]
    # built in a private copy of the chart directory, which the upgrade then installs
    copy = build.words[3]
    assert copy != chart and Path(copy).name == "mybinder"
    assert not Path(copy).exists()  # removed when the deploy ended
    assert build.words[4] == "--repository-cache" and build.words[-1] == "--skip-refresh"
    # both in one private helm home, never the user's
    assert add.env and build.env and add.env == build.env
    assert build.words[5] == add.env["HELM_REPOSITORY_CACHE"]
    assert not Path(add.env["HELM_CONFIG_HOME"]).exists()  # removed after the build
    assert "helm dependency" not in " ".join(" ".join(w) for w in words if w[1] == "upgrade")
    upgrades = [c for c in calls if c.words[1] == "upgrade"]
    assert [(c.words[2], c.words[3], c.words[c.words.index("--namespace") + 1])
            for c in upgrades] == [
        ("gesis", system, "kube-system"),
        ("cert-manager", "oci://quay.io/jetstack/charts/cert-manager", "cert-manager"),
        ("gesis", copy, "gesis"),
    ]
    apply = ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", crds, *kc]
    assert words.index(apply) < words.index(upgrades[1].words)  # CRDs before cert-manager
    assert words.index(apply) > words.index(upgrades[0].words)
    # values on stdin, as JSON: exactly the rendered ones
    rendered = render_member(load_federation(adopted), "hetzner-gesis")
    assert [json.loads(c.input or "") for c in upgrades] == [r.values for r in rendered]
    assert all("--values" in c.words and c.words[c.words.index("--values") + 1] == "-"
               for c in upgrades)
    assert [r.name for r in report.releases] == ["gesis", "cert-manager", "gesis"]
    assert report.crds == [crds]


def test_ci_matrix_lists_members_in_cd_order(adopted: Path) -> None:
    result = invoke(adopted, "ci-matrix")
    assert result.exit_code == 0, result.output
    assert [e["member"] for e in json.loads(result.stdout)["include"]] == CD_ORDER
    # the order comes from ci.order, not from the members' order in the file
    path = adopted / "federation.yaml"
    data = yaml.safe_load(path.read_text())
    data["members"] = dict(reversed(list(data["members"].items())))
    data["ci"]["order"] = ["prod", "staging"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = invoke(adopted, "ci-matrix")
    assert [e["member"] for e in json.loads(result.stdout)["include"]] == [
        "prod", "staging", "bids-ovh", "hetzner-gesis", "hetzner-2i2c"]


# --------------------------------------------------------------------------------------------
# hooks: real processes


class HookRunner(RecordingRunner):
    """Records every command; runs the hooks (python) for real, through the real Runner."""

    def run(self, argv: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if argv[0] == sys.executable:
            self.calls.append(Call([str(a) for a in argv], kwargs.get("env"), None))
            return Runner(echo=False).run(argv, **kwargs)
        return super().run(argv, **kwargs)


def add_hooks(repo: Path, member: str, hooks: list[dict[str, Any]]) -> None:
    path = repo / "federation.yaml"
    data = yaml.safe_load(path.read_text())
    data["members"][member]["hooks"] = hooks
    path.write_text(yaml.safe_dump(data, sort_keys=False))


LOG = ("import os, sys; open('hooks.log', 'a').write(' '.join(sys.argv[1:]) + ' ' "
       "+ os.environ.get('KUBECONFIG', '-') + chr(10)); print('logged', sys.argv[1])")


def test_hooks_run_after_their_stage_in_the_config_dir(
        adopted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the user's own cluster: no hook may see it (issue 29: the hooks after verify did)
    monkeypatch.setenv("KUBECONFIG", "/home/someone/.kube/config")
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "network-bans", "after": "auth", "argv": [sys.executable, "secrets/ban.py"]},
        {"name": "after-releases", "after": "releases",
         "argv": [sys.executable, "-c", LOG, "releases", "{member}", "{namespace}"]},
        {"name": "tests", "after": "verify",
         "argv": [sys.executable, "-c", LOG, "verify", "{kubeconfig}"]},
    ])
    runner = HookRunner()
    messages: list[str] = []
    report = deploy_recorded(adopted, "hetzner-2i2c", runner, progress=messages.append)
    assert report.hooks == ["network-bans", "after-releases", "tests"]
    tools = [" ".join(w[:3]) if w[0] != Path(sys.executable).name else w[1] for w in
             (c.words for c in runner.calls)]
    probe = tools.index("kubectl get --raw")
    assert tools[probe + 1] == "secrets/ban.py"  # right after auth, before any chart
    last_upgrade = max(i for i, t in enumerate(tools) if t.startswith("helm upgrade"))
    assert tools[last_upgrade + 1] == "-c"  # after the releases, before the rollout
    assert tools[last_upgrade + 2].startswith("kubectl get deployments")
    assert tools[-1] == "-c"  # after verify, last
    log = (adopted / "hooks.log").read_text().splitlines()  # cwd: the config directory
    assert log[0].startswith("releases hetzner-2i2c hetzner-2i2c /")  # the run's kubeconfig
    private = log[0].rsplit(" ", 1)[1]
    assert "someone" not in private
    # after verify too: the run's kubeconfig in the environment and in {kubeconfig}
    assert log[1] == f"verify {private} {private}"
    assert not Path(private).exists()  # and gone once the deploy is done
    assert "  bans updated" in messages and "  logged verify" in messages
    assert "hook network-bans (after auth) of hetzner-2i2c" in messages


def test_hooks_of_a_run_without_credentials_get_no_kubeconfig_said_up_front(
        adopted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--stage post-tests` (a hook after verify alone): no auth, so no private kubeconfig;
    the hook runs with KUBECONFIG removed (never the user's), and that is said before it
    runs; a hook that names {kubeconfig} is refused before anything runs."""
    monkeypatch.setenv("KUBECONFIG", "/home/someone/.kube/config")
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "post-tests", "after": "verify",
         "argv": [sys.executable, "-c", LOG, "verify"]}])
    result = invoke(adopted, "deploy", "hetzner-2i2c", "--stage", "post-tests", "--yes")
    assert result.exit_code == 0, result.output
    assert (adopted / "hooks.log").read_text() == "verify -\n"
    said = result.stderr.index("run without a kubeconfig")
    assert said < result.stderr.index("hook post-tests (after verify)")
    assert "KUBECONFIG is removed" in result.stderr
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "post-tests", "after": "verify",
         "argv": [sys.executable, "-c", LOG, "verify", "{kubeconfig}"]}])
    result = invoke(adopted, "deploy", "hetzner-2i2c", "--stage", "post-tests", "--yes")
    assert result.exit_code == 2
    assert "names {kubeconfig}, and this run gets no cluster credentials" in result.stderr
    assert (adopted / "hooks.log").read_text() == "verify -\n"  # it never ran


@pytest.mark.parametrize("part", ["{kubeconfg}", "--ns={ns}", "{Member}x{member}"])
def test_an_unknown_hook_placeholder_is_a_config_error(adopted: Path, part: str) -> None:
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "post-tests", "after": "verify",
         "argv": ["echo", "${HOME}", "{.items}", "{{x}}", part]}])
    result = invoke(adopted, "validate", "--without-secrets")
    assert result.exit_code == 2, result.output
    assert "federation.yaml:" in result.stderr
    assert "members.hetzner-2i2c.hooks[0].argv[4]: unknown placeholder" in result.stderr


def test_a_failing_hook_fails_the_deploy_naming_it(adopted: Path) -> None:
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "broken", "after": "auth",
         "argv": [sys.executable, "-c", "import sys; print('no bans'); sys.exit(3)"]}])
    runner = HookRunner()
    from federation_deploy.errors import ToolError

    with pytest.raises(ToolError) as info:
        deploy_recorded(adopted, "hetzner-2i2c", runner)
    assert "stage 'hooks' failed: hook 'broken' of hetzner-2i2c (after auth" in str(info.value)
    assert "no bans" in str(info.value)
    assert not [c for c in runner.calls if c.words[1:2] == ["upgrade"]]  # nothing deployed
    # and through the CLI, with only the hook selected by name: exit 1 naming it
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "post-tests", "after": "verify",
         "argv": [sys.executable, "-c", "import sys; sys.exit(4)"]}])
    result = invoke(adopted, "deploy", "hetzner-2i2c", "--stage", "post-tests", "--yes")
    assert result.exit_code == 1
    assert "hook 'post-tests' of hetzner-2i2c (after verify" in result.stderr
    assert "exit 4" in result.stderr
    result = invoke(adopted, "deploy", "hetzner-2i2c", "--stage", "nope", "--yes")
    assert result.exit_code == 2 and "hooks of hetzner-2i2c: post-tests" in result.stderr


def test_stage_selection_with_hooks(adopted: Path) -> None:
    add_hooks(adopted, "staging", [
        {"name": "bans", "after": "auth", "argv": ["true"]},
        {"name": "tests", "after": "verify", "argv": ["true"]}])
    member = load_federation(adopted).member("staging")
    plan = pipeline.plan_stages
    assert plan(None, member) == (pipeline.STAGES, member.hooks)
    assert plan(["hooks"], member) == (("auth",), member.hooks)  # bans needs the cluster
    assert plan(["tests"], member) == ((), member.hooks[1:])
    assert plan(["verify", "bans"], member) == (("auth", "verify"), member.hooks[:1])
    assert plan(["releases"], member) == (("auth", "releases", "rollout"), ())
    add_hooks(adopted, "prod", [])  # adopt wrote deploy.py's steps: none left here
    result = invoke(adopted, "deploy", "prod", "--stage", "hooks", "--yes")
    assert result.exit_code == 2, result.output
    assert "--stage hooks: member prod has no hooks" in result.stderr


def test_the_adopted_file_passes_the_editor_schema(adopted: Path) -> None:
    """What adopt writes (values lists with plain-string entries among them) is valid for
    the shipped JSON Schema as well as for the loader, so an editor shows no false errors."""
    import jsonschema
    import yaml

    from federation_deploy.config.editor_schema import federation_schema

    document = yaml.safe_load((adopted / "federation.yaml").read_text(encoding="utf-8"))
    entries = [entry for member in document["members"].values()
               for release in member.get("releases", []) for entry in release.get("values", [])]
    assert any(isinstance(e, str) for e in entries) and any(isinstance(e, dict) for e in entries)
    jsonschema.validate(document, federation_schema())
