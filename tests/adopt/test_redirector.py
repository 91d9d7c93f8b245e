"""Which member's federationRedirect is the federation's redirector: never a guess (issue 29,
item 8: prod's values without the block made staging's own redirector the federation's,
staging prime with weight 100 and the real members `routed: false`, exit 0)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from federation_deploy.adopt.redirector import choose_redirector
from federation_deploy.adopt.sources import Unmapped
from federation_deploy.cli.main import cli
from federation_deploy.errors import UsageError


def run_adopt(*args: str) -> Any:
    return CliRunner().invoke(cli, ["adopt", *args])


def drop_block(path: Path, key: str = "federationRedirect:") -> None:
    """Remove a top-level block (its key and indented lines) from a YAML file."""
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(key))
    end = start + 1
    while end < len(lines) and (lines[end].startswith(" ") or not lines[end].strip()):
        end += 1
    path.write_text("".join(lines[:start] + lines[end:]))


def test_prod_without_a_redirector_block_is_refused_not_given_to_staging(
        deploy_repo: Path) -> None:
    drop_block(deploy_repo / "config" / "prod.yaml")
    result = run_adopt(str(deploy_repo))
    assert result.exit_code == 2, result.output
    err = result.stderr
    assert "the federation redirector (which member runs it is ambiguous)" in err
    assert "found only: staging (redirect.staging.binder.example.org, hosts: staging)" in err
    assert "--redirector-member NAME" in err
    written = (deploy_repo / "federation.yaml").read_text()
    # listed under "Not mapped" in the file itself
    assert "  - the federation redirector (which member runs it is ambiguous)" in written
    members = yaml.safe_load(written)["members"]
    assert "redirector" not in yaml.safe_load(written)
    assert not any(m.get("prime") for m in members.values())
    assert not any(m.get("routed") is False for m in members.values())


def test_the_member_named_runs_it(deploy_repo: Path) -> None:
    drop_block(deploy_repo / "config" / "prod.yaml")
    result = run_adopt(str(deploy_repo), "--redirector-member", "staging")
    assert "ambiguous" not in result.stderr
    document = yaml.safe_load((deploy_repo / "federation.yaml").read_text())
    assert document["redirector"]["member"] == "staging"
    assert document["members"]["staging"]["prime"] is True


def test_naming_a_member_without_redirector_values_is_a_usage_error(deploy_repo: Path) -> None:
    drop_block(deploy_repo / "config" / "prod.yaml")
    result = run_adopt(str(deploy_repo), "--redirector-member", "prod")
    assert result.exit_code == 2
    assert ("--redirector-member prod: its plain values" in result.stderr
            and "(members whose values do: staging)" in result.stderr)
    assert not (deploy_repo / "federation.yaml").exists()


def test_the_fixture_as_it_is_still_adopts_prods(deploy_repo: Path) -> None:
    result = run_adopt(str(deploy_repo))
    assert "ambiguous" not in result.stderr
    document = yaml.safe_load((deploy_repo / "federation.yaml").read_text())
    assert document["redirector"]["member"] == "prod"


# -- the rule, on its own ---------------------------------------------------------------------

PROD = ("prod", {"host": "mybinder.org", "hosts": {"prod": {}, "ovh2": {}, "gesis": {}}})
STAGING = ("staging", {"host": "staging.mybinder.org", "hosts": {"staging": {}}})
SIDECAR = ("ovh2", {"hosts": {"ovh2": {}}})
OTHER = ("hetzner", {"hosts": {"hetzner": {}, "gesis": {}}})


@pytest.mark.parametrize(("candidates", "chosen"), [
    ([STAGING, PROD], "prod"),
    ([PROD, SIDECAR], "prod"),
    ([SIDECAR, STAGING, PROD], "prod"),
])
def test_one_federation_redirector_is_chosen(candidates: list[Any], chosen: str) -> None:
    choice = choose_redirector(candidates, ("staging",), None)
    assert choice.chosen is not None and choice.chosen[0] == chosen
    assert choice.refused is None and len(choice.others) == len(candidates) - 1


@pytest.mark.parametrize("candidates", [[STAGING], [SIDECAR], [STAGING, SIDECAR],
                                        [PROD, OTHER]],
                         ids=["staging-only", "sidecar-only", "no-federation-kind", "two"])
def test_ambiguity_is_refused(candidates: list[Any]) -> None:
    choice = choose_redirector(candidates, ("staging",), None)
    assert choice.chosen is None
    assert isinstance(choice.refused, Unmapped) and choice.refused.blocking
    assert "--redirector-member NAME" in choice.refused.how


def test_no_redirector_at_all_is_not_an_ambiguity() -> None:
    choice = choose_redirector([], ("staging",), None)
    assert choice.chosen is None and choice.refused is None


def test_a_named_member_must_have_redirector_values() -> None:
    with pytest.raises(UsageError, match="--redirector-member prod"):
        choose_redirector([STAGING], ("staging",), "prod")
