"""member new against the sandbox's AWS emulator: the new member's stack is bootstrapped and
planned by the real terraform (moto_server), its ramp planned and its values rendered, with
nothing edited by hand between `member new` and those commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from tests.conftest import copy_federation
from tests.helpers.names import fresh_name, taken_names

pytestmark = pytest.mark.terraform


def test_member_new_then_bootstrap_plan_ramp_and_render(tmp_path: Path,
                                                        tf_env: dict[str, str]) -> None:
    config = copy_federation(tmp_path, with_generated=False)
    name = fresh_name(taken_names(tmp_path))

    def run(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, ["--config-dir", str(config), *args], env=tf_env)
        return result.exit_code, result.stdout, result.stderr

    code, out, err = run("member", "new", name, "--cloud", "aws", "--region", "eu-west-1")
    assert code == 0, err
    assert run("validate")[0] == 0
    code, _, err = run("terraform", "bootstrap", name)
    assert code == 0, err
    assert f"mybinder-{name}-terraform-state" in err
    code, out, err = run("terraform", "plan", name)
    assert code == 0, err
    assert "to add" in err and f'"mybinder.org/member" = "{name}"' in out
    code, out, err = run("ramp", name, "--dry-run")
    assert code == 0, err
    assert name in out and "15" in out
    code, out, err = run("render", name, "--release", "binderhub")
    assert code == 0, err
    assert f"- {name}.mybinder.org" in out
