"""Golden files: the rendered values of every member, as `render MEMBER` prints them.

A deliberate change of config or rendering updates them with UPDATE_GOLDEN=1 pytest ...;
the diff of the golden files is then part of the review.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from tests.conftest import copy_federation

GOLDEN = Path(__file__).parent / "golden"
MEMBERS = ["gke", "staging", "ovh2", "curvenote"]


@pytest.mark.parametrize("member", MEMBERS)
def test_rendered_values_match_golden(member: str, tmp_path: Path) -> None:
    config = copy_federation(tmp_path, with_generated=False)
    result = CliRunner().invoke(cli, ["--config-dir", str(config), "render", member])
    assert result.exit_code == 0, result.stderr
    golden = GOLDEN / f"{member}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(result.stdout)
    assert golden.exists(), f"no golden file for {member}: run with UPDATE_GOLDEN=1"
    assert result.stdout == golden.read_text()


def test_every_deployable_member_has_a_golden_file(tmp_path: Path) -> None:
    from federation_deploy.config import load_federation

    fed = load_federation(copy_federation(tmp_path))
    assert sorted(m.name for m in fed.members.values() if m.deployable) == sorted(MEMBERS)
