"""The ramp command's evidence, as people see it: the plan's launches needed, the evidence kept
in the `ramp:` block, `traffic` and the GitHub step summary."""

from __future__ import annotations

from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands.step_summary import ramp_markdown
from federation_deploy.commands.traffic import traffic_rows, traffic_table
from federation_deploy.config import RampState
from federation_deploy.traffic.ramp.evidence import Launches, Window, judge, launches_needed
from federation_deploy.traffic.ramp.state import write_member
from federation_deploy.traffic.weights import snapshot_of
from tests.helpers.standin_federation import StandinFederation

EVIDENCE = {"step": 1, "verdict": "inconclusive", "user_launches": 3, "probe_launches": 12,
            "failed": 0, "failure_rate": 0.0, "others_failure_rate": 0.021,
            "p50_seconds": 28.0, "p90_seconds": 41.5, "others_p50_seconds": 30.0,
            "others_p90_seconds": 60.0, "needed": 27}


def test_the_plan_says_the_launches_each_step_needs(federation: StandinFederation) -> None:
    result = CliRunner().invoke(cli, [
        "--config-dir", str(federation.config_dir), "ramp", "gamma", "--steps", "1,5",
        "--dry-run", "--launch-rate", "2", "--probe", "gh/org/small/HEAD", "--hold", "30m"])
    assert result.exit_code == 0, result.output
    head, first, second, final = result.stdout.splitlines()
    assert head.split()[-5:] == ["then", "launches", "needed", "evidence", "hold"]
    needed = launches_needed()
    # what the gate asks with no history (p0 the prior 2%, raised by its uncertainty): the
    # plan and the live gate use one function
    assert needed == judge(Window(Launches(), Launches(), Launches())).needed == 83
    # 1% of 2/s is 72 launches an hour, probes add 60: 83 launches take about 38 minutes
    assert first.split()[-2:] == [str(needed), "~38m"]
    assert second.split()[-1] == "~12m"  # 360 + 60 an hour: 83 in 12 minutes
    assert final.split()[-2:] == [str(needed), "~10m"]
    # without an evidence source the plan is today's
    plain = CliRunner().invoke(cli, ["--config-dir", str(federation.config_dir), "ramp",
                                     "gamma", "--dry-run"])
    assert "launches needed" not in plain.stdout


def test_the_evidence_is_kept_and_shown(federation: StandinFederation) -> None:
    fed = federation.load()
    state = RampState(steps=(1.0, 100.0), step=0, to_weight=100.0, hold="30m",
                      started="2025-03-01T10:00:00Z", evidence=EVIDENCE)
    fed = write_member(snapshot_of(fed), "gamma", 1.0101, state).fed
    text = federation.path.read_text()
    assert "      evidence:\n        step: 1\n        verdict: inconclusive\n" in text
    assert fed.members["gamma"].ramp is not None
    assert dict(fed.members["gamma"].ramp.evidence or {}) == EVIDENCE
    table = traffic_table(traffic_rows(fed))
    assert ("evidence at step 1: inconclusive, 3 user + 12 probe launches, 0.0% failed vs "
            "2.1%, p90 42s vs 60s, needs about 27 more launches") in table
    summary = ramp_markdown(fed, "gamma", None,
                            "the ramp of gamma is paused at step 1/2 (1%) (weight 1.0101), "
                            "inconclusive: still inconclusive after 7200s")
    assert "**paused (inconclusive)**" in summary
    assert "| inconclusive | 3 | 12 | 0 | 0.0% (2.1%) | 28s (30s) | 42s (60s) | 27 |" in summary
