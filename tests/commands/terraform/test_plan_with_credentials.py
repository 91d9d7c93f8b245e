"""plan with cloud credentials: a pull request that touches a member's stack gets terraform's
own plan summary of HEAD's stack (here against moto_server, which stands in for AWS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands import terraform as tf_commands
from federation_deploy.config import load_federation
from federation_deploy.runner import Runner
from tests.commands.test_plan import commit, git, member_blocks
from tests.conftest import copy_federation

pytestmark = pytest.mark.terraform


def test_a_touched_stack_gets_terraforms_plan_summary(tmp_path: Path,
                                                      tf_env: dict[str, str]) -> None:
    config = copy_federation(tmp_path, with_generated=False)
    root = config.parent
    git(root, "init", "--quiet", "--initial-branch=main")
    commit(root, "base")
    tf_commands.bootstrap_member(load_federation(config), "curvenote", Runner(echo=False),
                                 env=tf_env)
    main = root / "terraform" / "aws" / "curvenote" / "main.tf"
    main.write_text(main.read_text().replace("node_max_size      = 6",
                                             "node_max_size      = 7"))
    commit(root, "a bigger node group")
    result = CliRunner().invoke(cli, ["--config-dir", str(config), "plan",
                                      "--changed-since", "main~1", "--terraform-plan"],
                                 env=tf_env)
    assert result.exit_code == 0, result.stderr
    curvenote = member_blocks(result.stdout)["curvenote"]
    assert "  terraform aws/curvenote: terraform/aws/curvenote/main.tf\n    plan: Plan: " \
        in curvenote, curvenote
    assert "to add" in curvenote
    # the work tree's stack was never initialised: the plan ran in the export
    assert not (main.parent / ".terraform").exists()
