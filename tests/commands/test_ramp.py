"""The ramp command's evidence, as people see it: the plan's launches needed, the evidence kept
in the `ramp:` block, `traffic` and the GitHub step summary."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from federation_deploy.cli.main import cli
from federation_deploy.commands.step_summary import ramp_markdown
from federation_deploy.commands.traffic import traffic_rows, traffic_table
from federation_deploy.config import RampState, load_federation
from federation_deploy.sandbox.prometheus import start_prometheus
from federation_deploy.traffic.ramp.evidence import Launches, Window, judge, launches_needed
from federation_deploy.traffic.ramp.state import write_member
from federation_deploy.traffic.weights import snapshot_of
from tests.helpers.standin_federation import (
    RedirectorThread,
    StandinFederation,
    send_launches,
    zipf_launch_paths,
)

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


def test_a_failure_with_a_newline_stays_in_its_summary_line(
        federation: StandinFederation) -> None:
    """Issue 29: free text (here a member's answer quoted in a rollback's reason) reaches the
    step summary on one line, its pipes escaped, no line of it a workflow command."""
    summary = ramp_markdown(federation.load(), "gamma", None,
                            "gamma is unhealthy: got 'x\n::error::forged | cell'")
    verdict = next(line for line in summary.splitlines() if line.startswith("**rolled back**"))
    assert verdict.endswith("got 'x\\n: :error: :forged \\| cell'")
    assert not [line for line in summary.splitlines() if line.lstrip().startswith("::")]


def invoke(federation: StandinFederation, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config-dir", str(federation.config_dir), "ramp", *args],
                              env={"CI": ""})


@pytest.mark.parametrize("mode", [[], ["--advance"]])
def test_a_ramp_with_no_evidence_source_is_refused_before_anything_is_written(
        federation: StandinFederation, tmp_path: Path, mode: list[str]) -> None:
    # ramp.yml's own command line, on a federation.yaml without redirector.prometheus_url
    before = federation.path.read_text()
    published = tmp_path / "config.json"
    result = invoke(federation, "gamma", *mode, "--yes", "--publish", f"file:{published}")
    assert result.exit_code == 2, result.output
    assert "the evidence gate has no evidence source: set redirector.prometheus_url" in \
        result.stderr
    assert "--probe REPO" in result.stderr and "--gate time" in result.stderr
    assert federation.path.read_text() == before and not published.exists()
    # the plan says so too
    plan = invoke(federation, "gamma", "--dry-run")
    assert plan.exit_code == 0 and "this ramp would be refused" in plan.stderr


def test_the_federations_prometheus_is_the_default_evidence_source(
        federation: StandinFederation, tmp_path: Path) -> None:
    server = start_prometheus({n: s.url + "/metrics" for n, s in federation.standins.items()})
    try:
        text = federation.path.read_text()
        federation.path.write_text(text.replace(
            "redirector:\n", f"redirector:\n  prometheus_url: {server.url}\n", 1))
        plan = invoke(federation, "gamma", "--dry-run", "--launch-rate", "2")
        assert plan.exit_code == 0 and "launches needed" in plan.stdout, plan.output
        args = ["gamma", "--advance", "--yes", "--publish", f"file:{tmp_path / 'c.json'}"]
        started = invoke(federation, *args, "--steps", "10", "--hold", "1h")
        assert started.exit_code == 0, started.output
        assert "gate: evidence gate (users' launches from Prometheus)" in started.stderr
        server.standin.scrape(time.time())
        held = invoke(federation, *args)
        assert held.exit_code == 0, held.output
        # judged on evidence (no launches: inconclusive), not "healthy, holding until"
        assert "holding: " in held.stdout and "healthy, holding until" not in held.stdout
    finally:
        server.stop()


def test_min_hold_above_max_hold_is_refused(federation: StandinFederation) -> None:
    result = invoke(federation, "gamma", "--yes", "--probe", "gh/org/small/HEAD",
                    "--min-hold", "2h", "--max-hold", "1h")
    assert result.exit_code == 2
    assert "--min-hold (2h) is longer than --max-hold (1h)" in result.stderr


def test_traffic_shows_a_ramp_qualifying_at_zero_with_probes(
        federation: StandinFederation) -> None:
    fed = federation.load()
    state = RampState(steps=(1.0, 100.0), step=-1, to_weight=100.0, hold="30m",
                      started="2025-03-01T10:00:00Z",
                      evidence={**EVIDENCE, "step": 0, "user_launches": 0})
    fed = write_member(snapshot_of(fed), "gamma", 0.0, state).fed
    table = traffic_table(traffic_rows(fed))
    assert "qualifying at 0% with probes" in table, table
    assert "evidence at step 0: inconclusive, 0 user + 12 probe launches" in table


def test_the_preflight_is_in_the_plan_traffic_and_the_summary(
        federation: StandinFederation, redirector: RedirectorThread) -> None:
    args = ["--config-dir", str(federation.config_dir), "ramp", "gamma", "--dry-run",
            "--launch-rate", "2", "--probe", "gh/org/small/HEAD"]
    # the dry run asks the redirector for the pool as the ramp does, and says the same
    empty = CliRunner().invoke(cli, [*args, "--redirector-url", redirector.url])
    assert empty.exit_code == 0, empty.output
    assert ("note: no pre-flight of gamma: the redirector knows no repository of its pool yet "
            "(its popularity estimate is empty)") in empty.stderr
    assert "first holds at 0%" in empty.stderr  # as the ramp: the qualifying hold on probes
    unreachable = CliRunner().invoke(cli, [*args, "--redirector-url", "http://127.0.0.1:9"])
    assert "note: no pre-flight of gamma: the redirector cannot say its pool: " in \
        unreachable.stderr
    send_launches(redirector.url, zipf_launch_paths(600), federation.url_to_member())
    with_redirector = CliRunner().invoke(cli, [*args, "--redirector-url", redirector.url])
    assert with_redirector.exit_code == 0, with_redirector.output
    # 83 launches, 4 at a time: 21 rounds of a minute (the federation's launch time unknown)
    assert ("note: before step 1, a pre-flight at 0% (nobody routed to gamma): its 20 most "
            "launched pool repositories launched on its BinderHub, 4 at a time, until about 83 "
            "launches show it as good as the rest: ~21m at 60s a launch") in with_redirector.stderr
    assert "qualifying" not in with_redirector.stderr
    # the gate and its risks, as the ramp says them
    assert "gate: evidence gate (a probe launch of gh/org/small/HEAD every 1m at most" in \
        with_redirector.stderr
    assert ("a step passes when its launches show gamma as good as the rest (false-promotion "
            "risk 1% per test, false-rollback risk 0.5% per step), after at least 600s; "
            "inconclusive holds up to 7200s, then pauses") in with_redirector.stderr
    # without a redirector there is no pool: the qualifying hold on probes, as before
    without = CliRunner().invoke(cli, args)
    assert "before step 1, a pre-flight" not in without.stderr
    assert "first holds at 0%" in without.stderr
    assert "note: no pre-flight: it needs --redirector-url" in without.stderr
    refused = CliRunner().invoke(cli, [*args, "--preflight", "10"])
    assert ("note: this ramp would be refused (exit 2): --preflight needs --redirector-url"
            in refused.stderr)
    assert "before step 1, a pre-flight" not in refused.stderr
    off = CliRunner().invoke(cli, [*args, "--redirector-url", redirector.url,
                                   "--preflight", "0"])
    assert "before step 1, a pre-flight" not in off.stderr
    assert "note: no pre-flight (--preflight 0)" in off.stderr
    # a pre-flight holding at 0: traffic and the step summary say so, its launches apart
    fed = federation.load()
    evidence = {**EVIDENCE, "step": 0, "stage": "pre-flight", "user_launches": 0}
    state = RampState(steps=(1.0, 100.0), step=-1, to_weight=100.0, hold="30m",
                      started="2025-03-01T10:00:00Z", evidence=evidence)
    fed = write_member(snapshot_of(fed), "gamma", 0.0, state).fed
    table = traffic_table(traffic_rows(fed))
    assert "pre-flight at 0%, nobody routed" in table, table
    assert "pre-flight evidence: inconclusive, 0 user + 12 pre-flight launches" in table
    summary = ramp_markdown(fed, "gamma", None, "paused at 0 (before the first step), "
                            "inconclusive: ...")
    assert "pre-flight evidence (at 0%, nobody routed to it" in summary
    assert "| verdict | user launches | pre-flight launches |" in summary


def test_the_scheduled_ramp_judges_on_the_federations_prometheus() -> None:
    # ramp.yml passes no evidence option and no --gate: the config's Prometheus is its source
    repo = Path(__file__).resolve().parents[2]
    workflow = (repo / ".github" / "workflows" / "ramp.yml").read_text()
    command = workflow[workflow.index('federation-deploy ramp "$MEMBER" --advance'):]
    command = command[:command.index("|| status=$?")]
    assert "--prometheus-url" not in command and "--gate" not in command
    assert load_federation(repo / "config").redirector.prometheus_url == \
        "https://prometheus.mybinder.org"
