"""The redirector's host names survive adoption: until 2024 mybinder's prod was the host `gke`.
The redirector ranks members by host name (rendezvous hashing) and labels its metrics with it,
so an adopted federation keeps `gke` (members.prod.redirector_host) and routes as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands.traffic import traffic_rows
from federation_deploy.config import load_federation
from federation_deploy.redirector.config import parse_config
from federation_deploy.redirector.routing import build_table, cache_key, rendezvous_choose
from federation_deploy.traffic.live import LiveState, Sample
from federation_deploy.traffic.weights import weights_of
from federation_deploy.values.redirector_config import redirector_config
from federation_deploy.values.render import render_member
from tests.adopt.layouts import LAYOUTS, build

REPOSITORIES = [f"/build/gh/org{i % 7}/repo-{i}/main" for i in range(400)]


def adopted(tmp_path: Path) -> Path:
    repo = build(LAYOUTS["2024"], tmp_path / "deploy")
    result = CliRunner().invoke(cli, ["adopt", str(repo)])
    assert result.exit_code == 0, result.output
    assert "members.prod.redirector_host keeps the name gke" in result.output
    return repo


def routes(config: dict[str, Any]) -> dict[str, str]:
    parsed = parse_config(config)
    table = build_table(parsed.hosts, {h.name for h in parsed.hosts}, parsed.load_balancer)
    return {path: rendezvous_choose(cache_key(path), table.candidates).name
            for path in REPOSITORIES}


def test_adopt_keeps_the_host_name_and_routing(tmp_path: Path) -> None:
    repo = adopted(tmp_path)
    data = yaml.safe_load((repo / "federation.yaml").read_text())
    assert data["members"]["prod"]["redirector_host"] == "gke"
    assert "redirector_host" not in data["members"]["ovh2"]  # its host is its name
    fed = load_federation(repo)
    ours = redirector_config(fed)
    assert list(ours["hosts"]) == ["gke", "ovh2", "curvenote", "gesis"]
    # the tree's own hosts block (config/prod.yaml), as deploy.py gives it to the redirector
    theirs = yaml.safe_load((repo / "config" / "prod.yaml").read_text())["federationRedirect"]
    assert set(theirs["hosts"]) == set(ours["hosts"])
    assert routes({**ours, "hosts": ours["hosts"]}) == routes({**ours, "hosts": theirs["hosts"]})
    assert set(routes(ours).values()) >= {"gke", "ovh2"}  # the set exercises several members
    # the rendered values of prod's release carry the same names
    (mybinder,) = [r for r in render_member(fed, "prod") if r.release.name == "mybinder"]
    assert set(mybinder.values["federationRedirect"]["hosts"]) == set(ours["hosts"])
    # weights are still the members': a publish and the ramp compare by member name
    assert weights_of(fed).weights["prod"] == 50


def test_shadow_shows_no_rename_and_a_rename_is_not_intended(tmp_path: Path) -> None:
    repo = adopted(tmp_path)
    run = CliRunner().invoke(cli, ["--config-dir", str(repo), "shadow", "prod", "--yes"],
                             env={"CI": ""})
    assert run.exit_code == 0, run.output
    assert "redirector host names differ" not in run.stdout
    path = repo / "federation.yaml"
    path.write_text(path.read_text().replace("    redirector_host: gke\n", ""))
    run = CliRunner().invoke(cli, ["--config-dir", str(repo), "shadow", "prod", "--yes"],
                             env={"CI": ""})
    assert run.exit_code == 3
    assert ("[NOT INTENDED] release prod in prod: redirector host names differ: here "
            "['curvenote', 'gesis', 'ovh2', 'prod'], deploy.py ['curvenote', 'gesis', 'gke', "
            "'ovh2']") in run.stdout


def test_traffic_reads_the_redirector_by_host_name(tmp_path: Path) -> None:
    fed = load_federation(adopted(tmp_path))
    live = LiveState({"gke": {"weight": 50}, "ovh2": {"weight": 10}},
                     (Sample("federation_redirect_count", {"member": "gke"}, 7.0),),
                     (), True)
    rows = {r.name: r for r in traffic_rows(fed, live)}
    assert rows["prod"].live is not None and rows["prod"].live["in_rotation"] is True
    assert rows["prod"].live["weight"] == 50
    assert rows["prod"].live["redirects"] == 7.0


def test_two_members_cannot_share_a_host_name(tmp_path: Path) -> None:
    repo = adopted(tmp_path)
    path = repo / "federation.yaml"
    path.write_text(path.read_text().replace("    redirector_host: gke\n",
                                             "    redirector_host: ovh2\n"))
    run = CliRunner().invoke(cli, ["--config-dir", str(repo), "validate", "--without-secrets"])
    assert run.exit_code == 2
    assert "redirector host name 'ovh2' is already member ovh2's" in run.output
