"""The terraform adapter without terraform: exact argv, pins, HCL reading, mirror config."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import pytest

from federation_deploy.actions import terraform as tf
from federation_deploy.commands import terraform as commands
from federation_deploy.commands import terraform as tf_commands
from federation_deploy.config import load_federation
from federation_deploy.config import terraform_files as tff
from federation_deploy.errors import UsageError
from federation_deploy.runner import Runner

VERSION_JSON = '{"terraform_version": "1.11.4", "platform": "linux_amd64"}'


class RecordingRunner(Runner):
    """Records argv and environment instead of running; answers `version -json` and plan."""

    def __init__(self, plan_exit: int = 2) -> None:
        super().__init__(echo=False)
        self.calls: list[tuple[list[str], dict[str, str], str | None]] = []
        self.plan_exit = plan_exit

    def run(self, argv: Sequence[str], *, cwd: str | os.PathLike[str] | None = None,
            env: Mapping[str, str] | None = None, **kwargs: Any,
            ) -> subprocess.CompletedProcess[str]:
        env = dict(env or {})
        config = env.get("TF_CLI_CONFIG_FILE")
        text = Path(config).read_text() if config else None
        self.calls.append(([str(a) for a in argv], env, text))
        if list(argv[1:3]) == ["version", "-json"]:
            return subprocess.CompletedProcess(list(argv), 0, VERSION_JSON, "")
        if argv[1] == "plan":
            for arg in argv:
                if arg.startswith("-out="):
                    Path(arg[5:]).write_bytes(b"a plan")
            out = "Plan: 1 to add, 2 to change, 0 to destroy.\n" if self.plan_exit else ""
            return subprocess.CompletedProcess(list(argv), self.plan_exit, out, "")
        return subprocess.CompletedProcess(list(argv), 0, "", "")

    @property
    def argvs(self) -> list[list[str]]:
        return [argv[1:] for argv, _, _ in self.calls]  # without the binary's path


@pytest.fixture
def fake_terraform(tmp_path: Path) -> str:
    """A `terraform` on a PATH of its own (never run: the RecordingRunner answers)."""
    binary = tmp_path / "bin" / "terraform"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\nexit 99\n")
    binary.chmod(0o755)
    return str(binary.parent)


# -- command lines -------------------------------------------------------------------------


def test_build_command_renders_flags_values_and_variables() -> None:
    argv = tf.build_command("terraform", "plan", input="false", no_color=True,
                            detailed_exitcode=True, lock=False, out="p.tfplan",
                            var={"region": "us-east-2", "cluster_name": "binderhub"})
    assert argv == ["terraform", "plan", "-input=false", "-no-color", "-detailed-exitcode",
                    "-out=p.tfplan", "-var=region=us-east-2", "-var=cluster_name=binderhub"]


def test_build_command_apply_of_a_saved_plan_has_no_auto_approve() -> None:
    argv = tf.build_command("terraform", "apply", "p.tfplan", input="false", no_color=True,
                            lock_timeout="0s")
    assert argv == ["terraform", "apply", "-input=false", "-no-color", "-lock-timeout=0s",
                    "p.tfplan"]


def test_build_command_subcommand_with_repeated_option() -> None:
    argv = tf.build_command("tf", "providers lock", platform=["linux_amd64", "darwin_arm64"],
                            fs_mirror="/m")
    assert argv == ["tf", "providers", "lock", "-platform=linux_amd64",
                    "-platform=darwin_arm64", "-fs-mirror=/m"]


def test_plan_runs_version_init_then_plan_in_the_stack(
    config_dir: Path, fake_terraform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TF_PLUGIN_MIRROR", raising=False)  # make test exports it where found
    fed = load_federation(config_dir)
    runner = RecordingRunner()
    stack = tf_commands.for_member(fed, "curvenote", runner, env={"PATH": fake_terraform})
    result = stack.plan()
    work = stack.stack / ".fd-work"
    assert runner.argvs == [
        ["version", "-json"],
        ["init", "-input=false", "-no-color", "-lockfile=readonly"],
        ["plan", "-input=false", "-no-color", "-detailed-exitcode",
         f"-out={work / 'plan.tfplan'}", "-var=region=us-east-2", "-var=cluster_name=binderhub",
         "-var=kubernetes_version=1.28"],
    ]
    assert runner.calls[0][0][0] == f"{fake_terraform}/terraform"
    assert result.summary.counts == {"add": 1, "change": 2, "destroy": 0}
    assert oct(work.stat().st_mode & 0o777) == "0o700"
    env = runner.calls[-1][1]
    assert env["TF_IN_AUTOMATION"] == "1" and env["TF_INPUT"] == "0"
    assert "TF_CLI_CONFIG_FILE" not in env  # no mirror asked for: the user's own config

    (stack.stack / ".terraform").mkdir()
    runner.calls.clear()
    stack.plan()  # initialised for exactly these files: no second init
    assert [a[0] for a in runner.argvs] == ["plan"]


def test_apply_runs_only_the_saved_plan(config_dir: Path, fake_terraform: str) -> None:
    fed = load_federation(config_dir)
    runner = RecordingRunner()
    stack = tf_commands.for_member(fed, "curvenote", runner, env={"PATH": fake_terraform})
    stack.plan()
    seen: list[str] = []
    summary, _ = stack.apply(confirm=lambda saved: seen.append(saved.summary.line))
    assert seen == ["Plan: 1 to add, 2 to change, 0 to destroy."]
    assert runner.argvs[-1] == ["apply", "-input=false", "-no-color", "-lock-timeout=0s",
                                str(stack.plan_file)]
    assert summary.counts["change"] == 2
    assert not stack.plan_file.exists() and not (stack.work_dir / tf.PLAN_META).exists()


def test_colour_where_the_runner_may_colour_but_never_in_data(config_dir: Path,
                                                              fake_terraform: str) -> None:
    fed = load_federation(config_dir)
    runner = RecordingRunner()
    runner.color = True  # stderr is a terminal, NO_COLOR unset
    stack = tf_commands.for_member(fed, "curvenote", runner, env={"PATH": fake_terraform})
    stack.plan()
    stack.outputs()
    by_command = {argv[0]: argv for argv in runner.argvs}
    assert "-no-color" not in by_command["init"] and "-no-color" not in by_command["plan"]
    assert "-no-color" in by_command["output"]  # JSON we parse


def test_mirror_makes_a_cli_config_for_the_run_only(config_dir: Path, fake_terraform: str,
                                                    tmp_path: Path) -> None:
    fed = load_federation(config_dir)
    runner = RecordingRunner()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    stack = tf_commands.for_member(fed, "curvenote", runner,
                          env={"PATH": fake_terraform, "TF_PLUGIN_MIRROR": str(mirror)})
    stack.check_version()
    _, env, text = runner.calls[0]
    assert text is not None and f'path    = "{mirror}"' in text
    assert 'exclude = ["*/*/*"]' in text
    assert not Path(env["TF_CLI_CONFIG_FILE"]).exists()  # removed after the run


def test_lock_with_a_mirror_locks_only_its_platforms(config_dir: Path, fake_terraform: str,
                                                     tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64").mkdir(parents=True)
    fed = load_federation(config_dir)
    runner = RecordingRunner()
    stack = tf_commands.for_member(fed, "curvenote", runner,
                          env={"PATH": fake_terraform, "TF_PLUGIN_MIRROR": str(mirror)})
    report = commands.lock(fed, "curvenote", runner, env=stack.env)
    assert runner.argvs[-2:] == [
        ["get", "-no-color"],
        ["providers", "lock", "-no-color", "-platform=linux_amd64", f"-fs-mirror={mirror}"],
    ]
    assert any("not locked for darwin_arm64" in m for m in report.messages)


def test_localhost_endpoint_is_refused_before_running(config_dir: Path,
                                                      fake_terraform: str) -> None:
    fed = load_federation(config_dir)
    runner = RecordingRunner()
    stack = tf_commands.for_member(fed, "curvenote", runner, env={
        "PATH": fake_terraform, "AWS_ENDPOINT_URL": "http://localhost:5000"})
    with pytest.raises(UsageError, match="use 127.0.0.1 instead of localhost"):
        stack.plan()
    assert runner.calls == []


def test_member_without_a_stack(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    with pytest.raises(UsageError, match="'ovh2' has no terraform stack"):
        tf_commands.for_member(fed, "ovh2", RecordingRunner())


# -- reading the stacks ----------------------------------------------------------------------


def test_pins_of_the_repository_agree(config_dir: Path) -> None:
    assert tff.check_terraform_pins(load_federation(config_dir)) == []


@pytest.mark.parametrize("pin, message", [
    ('"1.11.3"', "says '1.11.3', but federation.yaml pins terraform '1.11.4'"),
    ('">= 1.12"', "the range '>= 1.12' does not allow terraform '1.11.4', the version "
                  "federation.yaml pins"),
    ('"~> 1.11.5"', "the range '~> 1.11.5' does not allow terraform '1.11.4'"),
    ('"latest"', "cannot read the range 'latest': pin exactly '1.11.4'"),
])
def test_a_stack_pinning_another_version_is_a_problem(config_dir: Path, pin: str,
                                                      message: str) -> None:
    versions = config_dir.parent / "terraform" / "gcp" / "prod" / "versions.tf"
    versions.write_text(versions.read_text().replace('"1.11.4"', pin))
    problems = tff.check_terraform_pins(load_federation(config_dir))
    assert len(problems) == 1
    problem = problems[0]
    assert problem.file.endswith("gcp/prod/versions.tf") and problem.line == 4
    assert problem.key == "required_version" and message in problem.message


@pytest.mark.parametrize("pin", ['">= 1.4.6"', '"~> 1.1"', '">= 1.5, < 2.0.0"', '"~> 1.11.0"'])
def test_a_range_that_allows_the_pinned_version_is_fine(config_dir: Path, pin: str) -> None:
    # mybinder.org-deploy's stacks pin ranges; federation.yaml pins one version inside them
    versions = config_dir.parent / "terraform" / "gcp" / "prod" / "versions.tf"
    versions.write_text(versions.read_text().replace('"1.11.4"', pin))
    assert tff.check_terraform_pins(load_federation(config_dir)) == []


@pytest.mark.parametrize("constraint, allowed", [
    ("~> 1.1", True), ("~> 1.1", True), ("~> 1.12", False), ("~> 1.11.4", True),
    ("~> 1.10.0", False), (">= 1.4.6", True), ("< 1.11.4", False), ("= 1.11.4", True),
    ("1.11.4", True), ("!= 1.11.4", False), (">= 1.0, < 1.11", False),
])
def test_satisfies_reads_terraform_constraints(constraint: str, allowed: bool) -> None:
    assert tff.satisfies("1.11.4", constraint) is allowed


def test_a_stack_without_pins_is_a_problem(config_dir: Path) -> None:
    versions = config_dir.parent / "terraform" / "aws" / "bootstrap" / "versions.tf"
    versions.write_text("terraform {\n}\n")
    problems = tff.check_terraform_pins(load_federation(config_dir))
    assert {p.key for p in problems} == {"required_version", "required_providers"}
    assert all(p.file.endswith("aws/bootstrap") for p in problems)


def test_s3_backend_is_read_from_the_stack(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    backend = tff.parse_s3_backend(fed.terraform_root / "aws" / "curvenote")
    assert backend is not None
    assert (backend.bucket, backend.key, backend.region, backend.dynamodb_table) == (
        "mybinder-curvenote-terraform-state", "curvenote/terraform.tfstate", "us-east-2",
        "mybinder-curvenote-terraform-locks")
    assert tff.parse_s3_backend(fed.terraform_root / "gcp" / "prod") is None


def test_bootstrap_refuses_a_member_without_s3_backend(config_dir: Path) -> None:
    with pytest.raises(UsageError, match="has no backend \"s3\""):
        tf_commands.bootstrap_member(load_federation(config_dir), "gke", RecordingRunner())


def test_variables_come_from_federation_yaml(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    curvenote = fed.member("curvenote")
    assert tf_commands.stack_variables(curvenote, fed.terraform_root / "aws" / "curvenote") == {
        "region": "us-east-2", "cluster_name": "binderhub", "kubernetes_version": "1.28"}
    gke = fed.member("gke")
    assert tf_commands.stack_variables(gke, fed.terraform_root / "gcp" / "prod") == {
        "project": "binderhub-288415", "location": "us-central1", "cluster_name": "prod",
        "kubernetes_version": "1.27"}


def test_mirror_platforms_of_both_layouts(tmp_path: Path) -> None:
    (tmp_path / "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64").mkdir(parents=True)
    packed = tmp_path / "registry.terraform.io/hashicorp/google"
    packed.mkdir(parents=True)
    (packed / "terraform-provider-google_4.63.0_darwin_arm64.zip").write_bytes(b"")
    assert tff.mirror_platforms(tmp_path) == {"linux_amd64", "darwin_arm64"}


@pytest.mark.parametrize("text, changes, line, counts", [
    ("...\nPlan: 1 to import, 3 to add, 0 to change, 1 to destroy.\n", True,
     "Plan: 1 to import, 3 to add, 0 to change, 1 to destroy.",
     {"import": 1, "add": 3, "change": 0, "destroy": 1}),
    ("No changes. Your infrastructure matches the configuration.\n", False,
     "No changes. Infrastructure matches the configuration.", {}),
    ("Changes to Outputs:\n  + x = 1\n", True, "Plan: changes to outputs only.", {}),
])
def test_plan_summary(text: str, changes: bool, line: str, counts: dict[str, int]) -> None:
    summary = tf.PlanSummary.parse(text, changes)
    assert (summary.changes, summary.line, dict(summary.counts)) == (changes, line, counts)


def test_outputs_are_formatted_with_sensitive_values_redacted() -> None:
    outputs = {"b": {"value": "x", "type": "string", "sensitive": True},
               "a": {"value": ["1", "2"], "type": ["list", "string"], "sensitive": False}}
    assert commands.format_outputs(outputs, "text") == 'a = ["1", "2"]\nb = <redacted>\n'
    assert '"value": "<redacted>"' in commands.format_outputs(outputs, "json")


def test_saved_outputs_leave_sensitive_ones_out(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    path = tf_commands.save_outputs(fed, "curvenote", {
        "registry_url": {"value": "r", "type": "string", "sensitive": False},
        "token": {"value": "secret", "type": "string", "sensitive": True}})
    assert path == config_dir / "generated" / "curvenote.terraform.json"
    assert "secret" not in path.read_text() and '"registry_url"' in path.read_text()


def test_every_terraform_subcommand_has_help() -> None:
    from click.testing import CliRunner

    from federation_deploy.cli.main import cli

    group = cli.get_command(click.Context(cli), "terraform")  # loaded lazily
    assert isinstance(group, click.Group)
    assert set(group.commands) == {"bootstrap", "init", "plan", "apply", "check", "output",
                                   "lock"}
    for name, command in group.commands.items():
        result = CliRunner().invoke(cli, ["terraform", name, "--help"])
        assert result.exit_code == 0 and "MEMBER" in result.output, name
        assert len((command.help or "").split()) > 10, name


def test_plugin_sockets_go_to_a_private_temporary_directory_removed_on_ctrl_c(
        config_dir: Path, fake_terraform: str) -> None:
    """Providers put their plugin sockets in TMPDIR; terraform interrupted in the middle left a
    0-byte socket in /tmp (issue 30). Each run gets a directory of its own, removed also when
    the run is interrupted."""

    class InterruptedRunner(RecordingRunner):
        def run(self, argv: Sequence[str], *, cwd: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None, **kwargs: Any,
                ) -> subprocess.CompletedProcess[str]:
            assert env is not None
            directory = Path(env["TMPDIR"])
            assert directory.name.startswith("federation-deploy-terraform-")
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700
            (directory / "plugin1234567").write_bytes(b"")  # a provider's socket
            self.calls.append(([str(a) for a in argv], dict(env), None))
            raise KeyboardInterrupt

    runner = InterruptedRunner()
    stack = tf_commands.for_member(load_federation(config_dir), "curvenote", runner,
                                   env={"PATH": fake_terraform})
    with pytest.raises(KeyboardInterrupt):
        stack.check_version()
    (_, env, _), = runner.calls
    assert not Path(env["TMPDIR"]).exists()
