"""member new / member remove on a copy of the fixture federation: the files written, validate
right after, the refusals, and nothing left behind by a failure. (The moto run of a new AWS
member's stack is tests/commands/terraform/test_member_new.py.)"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from tests.helpers.names import fresh_name, taken_names


def run(config_dir: Path, *args: str, env: dict[str, str] | None = None
        ) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), *args], env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def members(config_dir: Path) -> dict[str, dict]:
    return yaml.safe_load((config_dir / "federation.yaml").read_text())["members"]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (but terraform's working areas), with its content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".terraform" not in p.parts and not p.name.endswith(".lock")}


@pytest.fixture
def name(config_dir: Path) -> str:
    return fresh_name(taken_names(config_dir.parent))


def test_a_kubeconfig_member_then_validate_render_and_ramp(config_dir: Path, name: str) -> None:
    code, out, err = run(config_dir, "member", "new", name, "--cloud", "kubeconfig")
    assert code == 0, err
    entry = members(config_dir)[name]
    assert entry["weight"] == 0 and entry["cloud"] == "kubeconfig"
    assert entry["url"] == f"https://{name}.mybinder.org"
    assert entry["cluster"] == {"kubeconfig": f"{name}-kubeconfig.yml"}
    # ovh2's releases, its namespace renamed after the new member
    assert entry["releases"] == [
        {"name": "ingress-nginx", "chart": "ingress-nginx", "namespace": "ingress-nginx"},
        {"name": "binderhub", "chart": "binderhub", "namespace": name}]
    assert entry["target_weight"] == 15  # the smallest weight in service
    text = (config_dir / "federation.yaml").read_text()
    assert f"  # {name}: added by `federation-deploy member new`, at weight 0" in text
    assert "# mybinder.org federation registry" in text  # comments kept (round trip)
    assert (config_dir / "values" / f"{name}.yaml").is_file()
    assert f"federation-deploy ramp {name} --dry-run" in out
    assert f"config/secrets/{name}-kubeconfig.yml" in out
    assert "terraform" not in out
    assert run(config_dir, "validate")[0] == 0
    code, out, err = run(config_dir, "render", name, "--release", "binderhub")
    assert code == 0, err
    assert f"hub_url: https://hub.{name}.mybinder.org" in out
    code, out, err = run(config_dir, "ramp", name, "--dry-run")
    assert code == 0, err
    assert name in out


def test_an_external_member_has_no_files(config_dir: Path, name: str) -> None:
    code, out, err = run(config_dir, "member", "new", name, "--cloud", "external", "--url",
                         f"https://binder.{name}.example.org/")
    assert code == 0, err
    # never ramped: no target_weight; its next step is `traffic set`, not a ramp
    assert members(config_dir)[name] == {"url": f"https://binder.{name}.example.org",
                                         "cloud": "external", "weight": 0}
    assert not (config_dir / "values" / f"{name}.yaml").exists()
    assert f"deploy {name}" not in out and "terraform" not in out
    assert "ramp" not in out and f"  federation-deploy traffic set {name} --weight 15" in out
    assert "target_weight" not in err


@pytest.mark.parametrize(("args", "message"), [
    (("--cloud", "gcp"), "--cloud gcp needs --project"),
    (("--cloud", "external"), "--cloud external needs --url"),
    (("--cloud", "kubeconfig", "--url", "http://example.org"), "--url http://example.org"),
])
def test_missing_or_bad_options_are_refused(config_dir: Path, name: str, args: tuple[str, ...],
                                            message: str) -> None:
    before = snapshot(config_dir.parent)
    code, _, err = run(config_dir, "member", "new", name, *args)
    assert code == 2 and message in err
    assert snapshot(config_dir.parent) == before


@pytest.mark.parametrize("taken", ["ovh2", "Not_A_Name"])
def test_taken_or_invalid_names_are_refused(config_dir: Path, taken: str) -> None:
    code, _, err = run(config_dir, "member", "new", taken, "--cloud", "kubeconfig")
    assert code == 2 and repr(taken) in err


def test_an_existing_stack_directory_is_never_overwritten(config_dir: Path, name: str) -> None:
    stack = config_dir.parent / "terraform" / "aws" / name
    stack.mkdir()
    (stack / "main.tf").write_text("# someone's work\n")
    before = snapshot(config_dir.parent)
    code, _, err = run(config_dir, "member", "new", name, "--cloud", "aws")
    assert code == 2 and f"terraform/aws/{name} exists already" in err
    assert snapshot(config_dir.parent) == before


def test_a_failed_lock_takes_everything_back(config_dir: Path, name: str, tmp_path: Path,
                                             terraform_binary: str) -> None:
    empty_mirror = tmp_path / "empty-mirror"
    empty_mirror.mkdir()
    before = snapshot(config_dir.parent)
    code, _, err = run(config_dir, "member", "new", name, "--cloud", "aws",
                       env={"TF_PLUGIN_MIRROR": str(empty_mirror)})
    assert code != 0, err
    assert snapshot(config_dir.parent) == before
    assert not (config_dir.parent / "terraform" / "aws" / name).exists()
    assert not list((config_dir.parent / "terraform" / "aws").glob(f".{name}.*"))


def test_an_aws_member_gets_its_own_state_and_a_lock_file(
        config_dir: Path, name: str, terraform_binary: str, plugin_mirror: str) -> None:
    code, out, err = run(config_dir, "member", "new", name, "--cloud", "aws", "--region",
                         "eu-west-1", env={"TF_PLUGIN_MIRROR": plugin_mirror})
    assert code == 0, err
    stack = config_dir.parent / "terraform" / "aws" / name
    versions = (stack / "versions.tf").read_text()
    assert f'key            = "{name}/terraform.tfstate"' in versions
    assert f'bucket         = "mybinder-{name}-terraform-state"' in versions
    assert f'dynamodb_table = "mybinder-{name}-terraform-locks"' in versions
    assert 'region         = "eu-west-1"' in versions
    assert "hashicorp/aws" in (stack / ".terraform.lock.hcl").read_text()
    entry = members(config_dir)[name]
    assert entry["terraform"]["stack"] == f"aws/{name}"
    # the cluster (and so its IAM names) after the member, apart from curvenote's binderhub-*
    assert entry["cluster"] == {"region": "eu-west-1", "name": name}
    assert entry["releases"][-1] == {"name": "binderhub", "chart": "binderhub",
                                     "namespace": name}
    assert out.splitlines()[2] == (
        "  # in the AWS account of curvenote? set create_github_oidc_provider's default to "
        f"false in terraform/aws/{name}/variables.tf (one GitHub OIDC provider per account)")
    assert out.splitlines()[3] == \
        f"  federation-deploy terraform bootstrap {name}   # its state bucket and lock table"
    assert run(config_dir, "validate")[0] == 0
    formatted = __import__("subprocess").run(
        [terraform_binary, "fmt", "-check", "-diff", str(stack)], capture_output=True,
        text=True, check=False)
    assert formatted.returncode == 0, formatted.stdout


# --- member remove ---------------------------------------------------------------------------


def test_remove_refuses_a_member_with_weight_or_the_prime(config_dir: Path) -> None:
    code, _, err = run(config_dir, "member", "remove", "ovh2")
    assert code == 2 and "has weight 15" in err and "traffic set ovh2 --weight 0" in err
    code, _, err = run(config_dir, "member", "remove", "gke")
    assert code == 2 and "prime member" in err
    # the advice names `traffic prime` only when this CLI has it
    traffic = cli.commands["traffic"]
    if isinstance(traffic, click.Group) and "prime" in traffic.commands:
        assert "`federation-deploy traffic prime OTHER`" in err
    else:
        assert "traffic prime" not in err
        assert "move `prime: true` to another routed member in federation.yaml" in err
    assert {"ovh2", "gke"} <= set(members(config_dir))


def test_remove_takes_the_entry_out_and_lists_the_files(config_dir: Path, name: str) -> None:
    assert run(config_dir, "member", "new", name, "--cloud", "kubeconfig")[0] == 0
    values = config_dir / "values" / f"{name}.yaml"
    kubeconfig = config_dir / "secrets" / f"{name}-kubeconfig.yml"
    kubeconfig.write_text("apiVersion: v1\n")
    # its values file first: validate refuses values of a member federation.yaml lacks
    code, _, err = run(config_dir, "member", "remove", name)
    assert code == 2 and f"delete config/values/{name}.yaml first" in err
    assert name in members(config_dir) and values.exists()
    values.unlink()
    code, out, err = run(config_dir, "member", "remove", name)
    assert code == 0, err
    assert name not in members(config_dir)
    assert f"removed members.{name}" in out and f"config/secrets/{name}-kubeconfig.yml" in out
    assert kubeconfig.exists()  # listed, not deleted
    assert run(config_dir, "validate")[0] == 0


def test_remove_of_a_member_ci_order_names_is_refused_and_nothing_changes(
        config_dir: Path, name: str) -> None:
    assert run(config_dir, "member", "new", name, "--cloud", "kubeconfig")[0] == 0
    (config_dir / "values" / f"{name}.yaml").unlink()
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text().replace("\nmembers:\n",
                                             f"\nci:\n  order: [staging, {name}]\n\nmembers:\n"))
    before = path.read_text()
    code, _, err = run(config_dir, "member", "remove", name)
    assert code == 2 and "ci" in err
    assert path.read_text() == before


@pytest.mark.parametrize(("taken", "message"), [
    ("a" * 39, "at most 38, for S3 bucket mybinder-" + "a" * 39 + "-terraform-state"),
    ("binderhub", "overlaps member curvenote's cluster name 'binderhub'"),
    ("binderhub-west", "overlaps member curvenote's cluster name 'binderhub'"),
])
def test_aws_names_that_do_not_fit_or_overlap_are_refused(config_dir: Path, taken: str,
                                                          message: str) -> None:
    before = snapshot(config_dir.parent)
    code, _, err = run(config_dir, "member", "new", taken, "--cloud", "aws")
    assert code == 2 and message in err
    assert snapshot(config_dir.parent) == before


def test_a_gcp_member_offline_says_the_mirror_lacks_its_provider(
        config_dir: Path, name: str, tmp_path: Path, plugin_mirror: str) -> None:
    # a mirror with the AWS provider only (as the sandbox's): terraform cannot lock google
    mirror = tmp_path / "aws-only-mirror" / "registry.terraform.io" / "hashicorp"
    mirror.mkdir(parents=True)
    (mirror / "aws").symlink_to(Path(plugin_mirror) / "registry.terraform.io" / "hashicorp"
                                / "aws")
    before = snapshot(config_dir.parent)
    code, _, err = run(config_dir, "member", "new", name, "--cloud", "gcp", "--project", "p",
                       env={"TF_PLUGIN_MIRROR": str(tmp_path / "aws-only-mirror")})
    assert code == 1, err
    assert (f"error: member new {name}: the plugin mirror TF_PLUGIN_MIRROR="
            f"{tmp_path / 'aws-only-mirror'} has no hashicorp/google, which a GCP stack "
            "needs") in err
    assert "nothing was written" in err
    assert snapshot(config_dir.parent) == before


def test_remove_takes_the_entrys_leading_comment_and_keeps_the_others(config_dir: Path,
                                                                       name: str) -> None:
    federation = config_dir / "federation.yaml"
    comments = [line.strip() for line in federation.read_text().splitlines()
                if line.strip().startswith("#")]
    assert run(config_dir, "member", "new", name, "--cloud", "kubeconfig")[0] == 0
    (config_dir / "values" / f"{name}.yaml").unlink()
    text = federation.read_text()
    federation.write_text(text.replace(f"\n  {name}:\n", f"\n  # {name}: a leading comment\n"
                                       f"  {name}:\n", 1))
    # and the entry before it: its own comment must stay, as must the entry's after it
    assert run(config_dir, "member", "remove", name)[0] == 0
    after = [line.strip() for line in federation.read_text().splitlines()
             if line.strip().startswith("#")]
    assert f"# {name}: a leading comment" not in after
    assert after == comments


@pytest.mark.parametrize("gone", ["a", "b", "c"])
def test_delete_entry_moves_the_next_entrys_comment(gone: str) -> None:
    from io import StringIO

    from ruamel.yaml import YAML

    from federation_deploy.commands.member import delete_entry

    text = ("members:\n  # a is first\n  a:\n    url: x\n    releases:\n      - name: r\n"
            "  # b: leads b\n  b:\n    url: y\n  # c: leads c\n  # (two lines)\n  c:\n"
            "    url: z\nother: 1\n")
    yaml = YAML()
    data = yaml.load(text)
    delete_entry(data, "members", gone)
    out = StringIO()
    yaml.dump(data, out)
    leads = {"a": "  # a is first\n", "b": "  # b: leads b\n",
             "c": "  # c: leads c\n  # (two lines)\n"}
    for key, lead in leads.items():
        if key == gone:
            assert lead not in out.getvalue() and f"  {key}:\n" not in out.getvalue()
        else:
            assert f"{lead}  {key}:\n" in out.getvalue()
