"""The Click layer: exit codes, stdout data vs stderr progress, files written by render."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import yaml
from click.testing import CliRunner

from federation_deploy.cli.main import cli


def run(config_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), *args])
    return result.exit_code, result.stdout, result.stderr


def test_help_on_every_command() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    import click

    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    assert {"validate", "members", "render", "terraform", "deploy", "diff", "verify", "traffic",
            "ramp", "redirector", "ci-matrix", "sandbox"} <= set(names)
    for name in names:
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert name in result.stdout
        sub = runner.invoke(cli, [name, "--help"])
        assert sub.exit_code == 0, name
        assert (command.help or "").strip(), f"{name} has no help text"
        if isinstance(command, click.Group):
            for sub_name in command.list_commands(ctx):
                nested = runner.invoke(cli, [name, sub_name, "--help"])
                assert nested.exit_code == 0, f"{name} {sub_name}"
                assert (command.commands[sub_name].help or "").strip(), f"{name} {sub_name}"


def test_validate_ok(config_dir: Path) -> None:
    code, out, err = run(config_dir, "validate")
    assert code == 0, err
    assert out == ""
    assert "config valid: 5 members" in err


def test_validate_lists_every_problem_exit_2(config_dir: Path) -> None:
    path = config_dir / "federation.yaml"
    text = path.read_text().replace("    weight: 15\n", "    weight: -1\n")
    path.write_text(text.replace("    cloud: external\n", "    cloud: azure\n"))
    code, out, err = run(config_dir, "validate")
    assert code == 2
    assert "invalid config: 2 problems" in err
    assert "members.ovh2.weight" in err and "members.gesis.cloud" in err
    assert "Traceback" not in err


def test_config_dir_from_environment(config_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["members", "-o", "json"],
                                env={"FEDERATION_DEPLOY_CONFIG_DIR": str(config_dir)})
    assert result.exit_code == 0
    assert [r["name"] for r in json.loads(result.stdout)][0] == "gke"


def test_missing_config_dir(tmp_path: Path) -> None:
    code, _, err = run(tmp_path / "nope", "members")
    assert code == 2 and "config directory not found" in err


def test_members_json(config_dir: Path) -> None:
    code, out, _ = run(config_dir, "members", "--output", "json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["gke"] == {"name": "gke", "cloud": "gcp", "url": "https://gke.mybinder.org",
                           "weight": 60, "share": 60.0, "prime": True, "routed": True,
                           "ramp": None}
    assert rows["staging"]["share"] is None
    assert rows["gesis"]["share"] == 25.0


def test_members_table(config_dir: Path) -> None:
    code, out, _ = run(config_dir, "members")
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == ["name", "cloud", "url", "weight", "share", "prime", "ramp"]
    assert lines[0].split()[:6] == ["gke", "gcp", "https://gke.mybinder.org", "60", "60.00%",
                                    "yes"]


def test_members_and_traffic_speak_one_vocabulary(config_dir: Path) -> None:
    """The same weight and share, typed alike in JSON and YAML, formatted alike in tables."""
    members = {r["name"]: r for r in json.loads(run(config_dir, "members", "-o", "json")[1])}
    traffic = {r["name"]: r for r in json.loads(run(config_dir, "traffic", "-o", "json")[1])}
    assert set(traffic) == {n for n, r in members.items() if r["routed"]}
    for name, row in traffic.items():
        for key in ("weight", "share", "ramp"):
            assert row[key] == members[name][key], (name, key)
            assert type(row[key]) is type(members[name][key]), (name, key)
        assert isinstance(row["weight"], float) and isinstance(row["share"], float)
    for command in ("members", "traffic"):
        as_yaml = yaml.safe_load(run(config_dir, command, "-o", "yaml")[1])
        assert as_yaml == json.loads(run(config_dir, command, "-o", "json")[1]), command
    tables = {}
    for command in ("members", "traffic"):
        header, *lines = run(config_dir, command)[1].splitlines()
        columns = header.split()
        tables[command] = {line.split()[0]: line.split() for line in lines if line.strip()}
        for cells in tables[command].values():
            share = cells[columns.index("share")]
            # staging is not routed: no share at all, not 0.00%
            assert share == "-" or share.endswith("%") and "." in share, (command, share)
    for name in traffic:
        assert tables["members"][name][3:5] == tables["traffic"][name][1:3], name


def test_output_format_refused_with_the_choices(config_dir: Path) -> None:
    code, _, err = run(config_dir, "traffic", "-o", "csv")
    assert code == 2 and "'table', 'json', 'yaml'" in err


def test_render_to_stdout_one_document_per_release(config_dir: Path) -> None:
    code, out, _ = run(config_dir, "render", "ovh2")
    assert code == 0
    docs = out.split("---\n")
    assert len(docs) == 2
    assert docs[0].startswith("# member: ovh2  release: ingress-nginx")
    assert docs[1].startswith("# member: ovh2  release: binderhub")


def test_render_redacts_unless_show_secrets(config_dir: Path) -> None:
    (config_dir / "secrets" / "values" / "ovh2.yaml").write_text(
        "binderhub:\n  registry:\n    password: s3cret-ovh-password\n")
    code, out, _ = run(config_dir, "render", "ovh2", "--release", "binderhub")
    assert code == 0
    assert "s3cret-ovh-password" not in out and "password: <redacted>" in out
    code, out, _ = run(config_dir, "render", "ovh2", "-r", "binderhub", "--show-secrets")
    assert "password: s3cret-ovh-password" in out


def test_render_output_dir_files_are_private(config_dir: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "rendered"
    code, out, err = run(config_dir, "render", "gke", "--output-dir", str(out_dir))
    assert code == 0 and out == ""
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ["binderhub.yaml", "cert-manager.yaml", "federation-redirect.yaml",
                     "ingress-nginx.yaml"]
    for path in out_dir.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_render_explain(config_dir: Path) -> None:
    code, out, _ = run(config_dir, "render", "gke", "--explain",
                       "binderhub.config.BinderHub.image_prefix")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("binderhub.config.BinderHub.image_prefix = \"us-central1")
    assert lines[1].startswith("  values/gke.yaml:") and "(config member): set" in lines[1]


def test_render_explain_a_key_terraform_sets_before_the_first_apply(config_dir: Path) -> None:
    """The README's example on a fresh clone (no saved terraform outputs) says where the value
    will come from, instead of "no layer sets it"."""
    code, out, _ = run(config_dir, "render", "curvenote", "--explain",
                       "binderhub.config.BinderHub.image_prefix")
    assert code == 0
    assert out.splitlines()[1].startswith(
        "  not set yet: terraform output 'image_prefix' of aws/curvenote sets it (")
    assert "members.curvenote.terraform.outputs) once `federation-deploy terraform apply " \
           "curvenote` has saved config/generated/curvenote.terraform.json" in out


def test_render_explain_a_mistyped_key_suggests_the_nearest(config_dir: Path) -> None:
    code, out, err = run(config_dir, "render", "gke", "--explain",
                         "binderhub.config.BinderHub.image_prefx")
    assert code == 2 and out == ""
    assert "--explain binderhub.config.BinderHub.image_prefx: no layer of gke/binderhub sets " \
           "it" in err
    assert "did you mean binderhub.config.BinderHub.image_prefix?" in err


def test_render_unknown_member_and_release(config_dir: Path) -> None:
    code, _, err = run(config_dir, "render", "nope")
    assert code == 2 and "unknown member 'nope'" in err
    code, _, err = run(config_dir, "render", "gke", "--release", "nope")
    assert code == 2 and "has no release 'nope'" in err


def test_render_invalid_config_renders_nothing(config_dir: Path) -> None:
    path = config_dir / "values" / "gke.yaml"
    path.write_text(path.read_text() + "\nbinderhubb:\n  x: 1\n")
    code, out, err = run(config_dir, "render", "gke")
    assert code == 2 and out == ""
    assert "values/gke.yaml" in err and "binderhubb" in err
