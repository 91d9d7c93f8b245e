"""The pre-flight before step 1, over real HTTP: the real redirector names the member's pool
(its popularity estimate, learnt from real launches), the stand-in members answer the
pre-flight's launches on their own BinderHub API, a Prometheus-API stand-in scrapes them, and
the ramp's clock is injected (nothing sleeps): a member as good as the rest goes on to step 1,
a failing one is stopped at 0% with nobody routed to it, one that gives too little evidence
pauses there, and an abort during the pre-flight wins."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from federation_deploy.commands.ramp import (
    abort_ramp,
    interrupted,
    interrupted_summary,
    run_ramp,
)
from federation_deploy.config import Federation, RampState
from federation_deploy.errors import UsageError, VerificationError, WeightsConflict
from federation_deploy.sandbox.prometheus import PrometheusServer, start_prometheus
from federation_deploy.traffic.publish import Publisher, make_publisher, parse_publish_target
from federation_deploy.traffic.ramp.engine import Clock, RampSettings
from federation_deploy.traffic.ramp.plan import RampStep
from federation_deploy.traffic.ramp.probes import PreflightLaunches, launch
from federation_deploy.traffic.ramp.state import write_member
from federation_deploy.traffic.weights import snapshot_of
from tests.helpers.standin_federation import (
    RedirectorThread,
    StandinFederation,
    send_launches,
    zipf_launch_paths,
)

T0 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)


class Scraping:
    """The ramp's clock: sleeping moves time on and lets the Prometheus stand-in scrape;
    `at` (clock time, callback) runs once when the clock reaches it."""

    def __init__(self, prometheus: PrometheusServer) -> None:
        self.t = T0
        self.prometheus = prometheus
        self.at: tuple[datetime, Callable[[], None]] | None = None
        prometheus.standin.scrape(self.t.timestamp())

    def sleep(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)
        self.prometheus.standin.scrape(self.t.timestamp())
        if self.at is not None and self.t >= self.at[0]:
            action, self.at = self.at[1], None
            action()

    def clock(self) -> Clock:
        return Clock(now=lambda: self.t, sleep=self.sleep)


def inline(work: Callable[[], None]) -> None:
    work()


@pytest.fixture
def prometheus(federation: StandinFederation) -> Iterator[PrometheusServer]:
    server = start_prometheus({n: s.url + "/metrics" for n, s in federation.standins.items()})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pool_known(federation: StandinFederation, redirector: RedirectorThread) -> RedirectorThread:
    """The redirector, after 3,000 users' launches (Zipf): it knows gamma's pool. None of
    them went to gamma (weight 0); its counts start from 0."""
    send_launches(redirector.url, zipf_launch_paths(3000), federation.url_to_member())
    gamma = federation.standins["gamma"]
    assert gamma.build_count == 0
    gamma.set_launches(20)
    return redirector


def settings(prometheus: PrometheusServer, redirector: RedirectorThread,
             **extra: object) -> RampSettings:
    base = RampSettings(prometheus_url=prometheus.url, redirector_url=redirector.url,
                        check_interval=10, poll_interval=0.05, settle_timeout=600,
                        request_timeout=5, record_interval=600, heartbeat_interval=0,
                        min_hold=120, max_hold=1800)
    return replace(base, **extra)  # type: ignore[arg-type]


def gamma_weight(published: Path) -> float:
    host = json.loads(published.read_text())["hosts"].get("gamma") or {}
    return float(host.get("weight") or 0.0)


def stop_at_step_1(reached: list[int]) -> Callable[[RampStep], None]:
    def on_step(step: RampStep) -> None:
        reached.append(step.index)
        raise KeyboardInterrupt  # enough: step 1 is served
    return on_step


def test_a_member_as_good_as_the_rest_passes_its_preflight_then_step_1(
        federation: StandinFederation, prometheus: PrometheusServer,
        pool_known: RedirectorThread, published: Path) -> None:
    clock = Scraping(prometheus)
    said: list[str] = []
    reached: list[int] = []
    publisher = make_publisher(parse_publish_target(f"file:{published}"))
    with pytest.raises(KeyboardInterrupt):
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                 settings=settings(prometheus, pool_known), clock=clock.clock(),
                 probe_spawn=inline, progress=said.append, on_step=stop_at_step_1(reached))
    assert reached == [0]
    assert any(line.startswith("pre-flight of gamma at 0% (nobody routed to it): a pre-flight "
                               "of the 20 most launched repositories of its pool, 4 launches")
               for line in said), said
    # no --warm: its first pass over the pool is said as the pre-flight's, not as warming
    assert sum(1 for line in said if line.startswith("pre-flight ") and "/20: gh/" in line) == 20
    assert not any(line.startswith("warming ") for line in said)
    passed = next(line for line in said
                  if line.startswith("0 (before the first step) passes: healthy: 0 user + "))
    launches = int(passed.split("0 user + ")[1].split()[0])
    assert "pre-flight launches" in passed
    assert launches >= 42, passed  # no failure: the failure test accepts after 42
    # every launch gamma saw was the pre-flight's (those in flight when it decided ended
    # before step 1): nobody was routed to it before step 1
    gamma = federation.standins["gamma"]
    assert launches <= gamma.build_count <= launches + 4
    state = federation.load().members["gamma"]
    assert state.ramp is not None and state.ramp.step == 0 and state.weight > 0
    assert gamma_weight(published) == pytest.approx(state.weight)


def test_a_failing_member_is_stopped_at_zero_with_nobody_routed(
        federation: StandinFederation, prometheus: PrometheusServer,
        pool_known: RedirectorThread, published: Path) -> None:
    federation.standins["gamma"].set_launches(20, failure_every=3)
    clock = Scraping(prometheus)
    reached: list[int] = []
    publisher = make_publisher(parse_publish_target(f"file:{published}"))
    ramp_settings = settings(prometheus, pool_known)
    with pytest.raises(VerificationError, match=r"failing: 0 user \+ \d+ pre-flight launches"):
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                 settings=ramp_settings, clock=clock.clock(), probe_spawn=inline,
                 on_step=reached.append)
    assert reached == []  # step 1 never served
    state = federation.load().members["gamma"]
    assert state.weight == 0 and gamma_weight(published) == 0
    assert state.ramp is not None and state.ramp.step == -1 and state.ramp.rolled_back
    evidence = state.ramp.evidence
    assert evidence is not None and evidence["stage"] == "pre-flight"
    assert evidence["verdict"] == "failing" and evidence["user_launches"] == 0
    assert federation.standins["gamma"].build_count <= float(evidence["probe_launches"]) + 4
    assert state.ramp.last_healthy is None
    # paused: the scheduled job leaves it alone
    outcome = run_ramp(federation.load(), "gamma", publisher, settings=ramp_settings,
                       clock=clock.clock(), probe_spawn=inline, advance=True)
    assert outcome.status == "paused" and "rolled back" in outcome.message


def test_too_little_evidence_by_its_maximum_pauses_at_zero(
        federation: StandinFederation, prometheus: PrometheusServer,
        pool_known: RedirectorThread, published: Path) -> None:
    # three checks of four launches each before the maximum: about 12 of the 42 it needs
    clock = Scraping(prometheus)
    publisher = make_publisher(parse_publish_target(f"file:{published}"))
    ramp_settings = settings(prometheus, pool_known, min_hold=10, max_hold=30)
    with pytest.raises(VerificationError) as paused:
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                 settings=ramp_settings, clock=clock.clock(), probe_spawn=inline)
    message = str(paused.value)
    assert "paused at 0 (before the first step)" in message and "inconclusive" in message
    assert "pre-flight launches" in message
    state = federation.load().members["gamma"]
    assert state.weight == 0 and gamma_weight(published) == 0
    assert state.ramp is not None and state.ramp.step == -1 and state.ramp.inconclusive
    # never passed on no evidence: the scheduled job does not start step 1 either
    outcome = run_ramp(federation.load(), "gamma", publisher, settings=ramp_settings,
                       clock=clock.clock(), probe_spawn=inline, advance=True)
    assert outcome.status == "paused" and "lack of evidence" in outcome.message
    assert federation.load().members["gamma"].weight == 0


def test_an_abort_during_the_preflight_wins(
        federation: StandinFederation, prometheus: PrometheusServer,
        pool_known: RedirectorThread, published: Path) -> None:
    clock = Scraping(prometheus)
    publisher = make_publisher(parse_publish_target(f"file:{published}"))
    ramp_settings = settings(prometheus, pool_known)
    aborted: list[str] = []

    def abort() -> None:
        state = federation.load().members["gamma"].ramp
        assert state is not None and state.step == -1  # the pre-flight is holding
        outcome = abort_ramp(federation.load(), "gamma", publisher,
                             settings=RampSettings(redirector_url=pool_known.url))
        aborted.append(outcome.status)

    clock.at = (T0 + timedelta(seconds=35), abort)
    with pytest.raises(WeightsConflict, match="the ramp of gamma was aborted; it stops without"):
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                 settings=ramp_settings, clock=clock.clock(), probe_spawn=inline)
    assert aborted == ["aborted"]
    state = federation.load().members["gamma"]
    assert state.weight == 0 and state.ramp is None and gamma_weight(published) == 0


def test_the_scheduled_job_starting_a_ramp_runs_the_preflight_first(
        federation: StandinFederation, prometheus: PrometheusServer,
        pool_known: RedirectorThread, published: Path) -> None:
    clock = Scraping(prometheus)
    said: list[str] = []
    publisher = make_publisher(parse_publish_target(f"file:{published}"))
    outcome = run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                       settings=settings(prometheus, pool_known), clock=clock.clock(),
                       probe_spawn=inline, progress=said.append, advance=True)
    assert (outcome.status, outcome.step) == ("started", 0)
    assert any(line.startswith("0 (before the first step) passes: healthy: 0 user + ")
               and "pre-flight launches" in line for line in said), said
    assert federation.standins["gamma"].build_count >= 42


def test_preflight_needs_a_redirector_and_the_evidence_gate(
        federation: StandinFederation, tmp_path: Path) -> None:
    publisher = make_publisher(parse_publish_target(f"file:{tmp_path / 'config.json'}"))
    for refused, why in ((RampSettings(prometheus_url="http://127.0.0.1:9", preflight=10),
                          "--preflight needs --redirector-url"),
                         (RampSettings(gate="time", redirector_url="http://127.0.0.1:9",
                                       preflight=10), "part of the evidence gate")):
        with pytest.raises(UsageError, match=why):
            run_ramp(federation.load(), "gamma", publisher, settings=refused)
    assert federation.load().members["gamma"].ramp is None  # nothing written
    # the default: a pre-flight of 20 when the ramp knows a redirector, none without
    assert RampSettings(redirector_url="http://127.0.0.1:9").preflight_repos == 20
    assert RampSettings().preflight_repos == 0
    assert RampSettings(redirector_url="http://127.0.0.1:9", preflight=0).preflight_repos == 0


def test_preflight_launches_take_turns_a_few_at_a_time(federation: StandinFederation) -> None:
    gamma = federation.standins["gamma"]
    gamma.set_launches(20, failure_every=2)
    said: list[str] = []
    launches = PreflightLaunches(gamma.url, ("gh/a/one/HEAD", "gh/a/two/HEAD"), launch,
                                 concurrency=3, spawn=inline, progress=said.append,
                                 warming=True)
    assert launches.maybe_launch(T0) and len(launches.flying) == 3
    assert launches.due_in(T0) is None  # every slot taken
    assert launches.gather(T0 + timedelta(seconds=10)) == 3
    # the first pass warms (said as it goes); a repository failing twice is launched no more
    assert said[0].startswith("warming 1/2: gh/a/one/HEAD ready")
    assert said[1].startswith("warming 2/2: gh/a/two/HEAD FAILED")
    window = launches.window(T0, T0 + timedelta(minutes=1))
    assert (window.launches, window.failures) == (3, 1)
    # the next three (two, one, two: every second launch fails at the stand-in) start before
    # the failures are counted; from then on only the first repository is launched
    launches.maybe_launch(T0 + timedelta(seconds=10))
    launches.gather(T0 + timedelta(seconds=20))
    assert launches.failed == {"gh/a/two/HEAD": 3}
    assert launches.launchable() == ["gh/a/one/HEAD"]
    launches.maybe_launch(T0 + timedelta(seconds=20))
    assert [repo for repo, _ in launches.flying] == ["gh/a/one/HEAD"] * 3
    # once the gate decided, no more launches start; it settles when none is in flight
    assert launches.settle(T0 + timedelta(seconds=20)) == (
        "waiting for 3 pre-flight launch(es) still in flight (they would count as users' "
        "launches at step 1)")
    assert launches.gather(T0 + timedelta(seconds=30)) == 3
    assert launches.settle(T0 + timedelta(seconds=30)) is None
    assert not launches.maybe_launch(T0 + timedelta(seconds=30))


def interrupt() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("advance", [False, True], ids=["resume", "advance"])
def test_a_ramp_interrupted_during_its_preflight_resumes_it_then_takes_step_1(
        federation: StandinFederation, prometheus: PrometheusServer,
        pool_known: RedirectorThread, published: Path, advance: bool) -> None:
    # the `ramp:` block written at 0 is a change of the published weights (the ramp flag):
    # written with a new generation and published, so that a resume finds them agreeing
    clock = Scraping(prometheus)
    publisher = make_publisher(parse_publish_target(f"file:{published}"))
    ramp_settings = settings(prometheus, pool_known)
    before = federation.load().generation
    clock.at = (T0 + timedelta(seconds=35), interrupt)
    with pytest.raises(KeyboardInterrupt) as stopped:
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                 settings=ramp_settings, clock=clock.clock(), probe_spawn=inline)
    assert "before its first step, and those weights were published" in interrupted(
        federation.config_dir, "gamma", [], [], [], stopped.value)[0]
    fed = federation.load()
    state = fed.members["gamma"].ramp
    assert state is not None and state.step == -1 and fed.members["gamma"].weight == 0
    assert fed.generation == before + 1
    served = json.loads(published.read_text())
    assert served["generation"] == fed.generation
    assert (served["hosts"].get("gamma") or {}).get("ramp") is True
    said: list[str] = []
    reached: list[int] = []
    if advance:
        outcome = run_ramp(federation.load(), "gamma", publisher, settings=ramp_settings,
                           clock=clock.clock(), probe_spawn=inline, progress=said.append,
                           advance=True)
        assert (outcome.status, outcome.step) == ("advanced", 0)
    else:
        with pytest.raises(KeyboardInterrupt):
            run_ramp(federation.load(), "gamma", publisher, settings=ramp_settings,
                     clock=clock.clock(), probe_spawn=inline, progress=said.append,
                     on_step=stop_at_step_1(reached))
        assert reached == [0]
    assert any(line.startswith("0 (before the first step) passes: healthy: 0 user + ")
               and "pre-flight launches" in line for line in said), said
    state = federation.load().members["gamma"].ramp
    assert state is not None and state.step == 0
    assert gamma_weight(published) == pytest.approx(federation.load().members["gamma"].weight)


def test_a_qualifying_hold_with_probes_interrupted_resumes(
        federation: StandinFederation, prometheus: PrometheusServer,
        pool_known: RedirectorThread, published: Path) -> None:
    clock = Scraping(prometheus)
    publisher = make_publisher(parse_publish_target(f"file:{published}"))
    ramp_settings = settings(prometheus, pool_known, preflight=0,
                             probe_repo="gh/a/one/HEAD", probe_interval=10)
    said: list[str] = []
    clock.at = (T0 + timedelta(seconds=35), interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                 settings=ramp_settings, clock=clock.clock(), probe_spawn=inline,
                 progress=said.append)
    assert any(line.startswith("qualifying gamma at 0% with probes") for line in said), said
    state = federation.load().members["gamma"].ramp
    assert state is not None and state.step == -1
    reached: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        run_ramp(federation.load(), "gamma", publisher, settings=ramp_settings,
                 clock=clock.clock(), probe_spawn=inline, on_step=stop_at_step_1(reached))
    assert reached == [0]


class InterruptedPublish(Publisher):
    """Ctrl-C during the first publish, and the publish target down when the ramp publishes
    what federation.yaml holds on its way out."""

    calls = 0

    def __call__(self, fed: Federation) -> None:
        self.calls += 1
        if self.calls == 1:
            raise KeyboardInterrupt
        raise OSError("the publish target is down")


def test_an_interrupt_whose_publish_failed_says_so_and_the_resume_publishes(
        federation: StandinFederation, prometheus: PrometheusServer,
        pool_known: RedirectorThread, published: Path) -> None:
    clock = Scraping(prometheus)
    target = parse_publish_target(f"file:{published}")
    ramp_settings = settings(prometheus, pool_known)
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt) as stopped:
        run_ramp(federation.load(), "gamma", InterruptedPublish(target), steps=(10.0,),
                 hold="10m", settings=ramp_settings, clock=clock.clock(),
                 probe_spawn=inline, progress=said.append)
    assert "not published: the publish target is down" in said
    lines = interrupted(federation.config_dir, "gamma", [], [], [], stopped.value)
    assert "before its first step, and those weights are not published yet (the resume " \
           "publishes them)" in lines[0]
    reached: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        run_ramp(federation.load(), "gamma", make_publisher(target), settings=ramp_settings,
                 clock=clock.clock(), probe_spawn=inline, on_step=stop_at_step_1(reached))
    assert reached == [0]


def test_a_zero_block_left_unpublished_by_an_earlier_version_resumes(
        federation: StandinFederation, prometheus: PrometheusServer,
        pool_known: RedirectorThread, published: Path) -> None:
    # what an earlier version left when interrupted in its pre-flight: a `ramp:` block at 0
    # written without a new generation, the same generation published without the ramp flag
    publisher = make_publisher(parse_publish_target(f"file:{published}"))
    fed = federation.load()
    publisher(fed)
    state = RampState(steps=(10.0, 100.0), step=-1, to_weight=100.0,
                      hold="10m", started="2025-03-01T09:00:00Z",
                      evidence={"step": 0, "stage": "pre-flight"})
    write_member(snapshot_of(fed), "gamma", 0.0, state, bump=False)
    clock = Scraping(prometheus)
    said: list[str] = []
    reached: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        run_ramp(federation.load(), "gamma", publisher,
                 settings=settings(prometheus, pool_known), clock=clock.clock(),
                 probe_spawn=inline, progress=said.append, on_step=stop_at_step_1(reached))
    assert reached == [0]
    assert any("written without a new generation" in line for line in said), said
    assert federation.load().generation == fed.generation + 2  # the block, then step 1


def test_warm_launches_without_a_preflight_are_not_counted_at_step_1(
        federation: StandinFederation, prometheus: PrometheusServer,
        pool_known: RedirectorThread, published: Path) -> None:
    # every warm launch fails; nobody launches at step 1: its evidence is none (inconclusive
    # by the maximum: paused), not the warm launches' failures (a rollback)
    federation.standins["gamma"].set_launches(20, failure_every=1)
    clock = Scraping(prometheus)
    said: list[str] = []
    ramp_settings = settings(prometheus, pool_known, preflight=0, warm=5, min_hold=10,
                             max_hold=60)
    publisher = make_publisher(parse_publish_target(f"file:{published}"))
    with pytest.raises(VerificationError) as stopped:
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0, 100.0), hold="10m",
                 settings=ramp_settings, clock=clock.clock(), probe_spawn=inline,
                 progress=said.append)
    assert sum(1 for line in said if "FAILED" in line and line.startswith("warming ")) == 5
    assert any(line.startswith("waiting 1m (a Prometheus scrape interval) before step 1")
               for line in said), said
    message = str(stopped.value)
    assert "paused at step 1/2 (10%)" in message and "inconclusive" in message, message
    # the hold extended for evidence is said once, with what it needs and until when
    extended = [line for line in said if "holding longer" in line]
    assert len(extended) == 1, said
    assert extended[0].startswith("step 1/2 (10%): holding longer: inconclusive, needs ~")
    assert "more launches, until at most 2025-03-01T10:0" in extended[0]
    assert extended[0].endswith("Z (then it pauses)")
    state = federation.load().members["gamma"].ramp
    assert state is not None and state.step == 0 and not state.rolled_back


def test_the_step_summary_explains_each_decision_and_where_an_interrupted_ramp_stopped(
        federation: StandinFederation, prometheus: PrometheusServer,
        pool_known: RedirectorThread, published: Path) -> None:
    clock = Scraping(prometheus)
    decisions: list[dict[str, object]] = []
    reached: list[int] = []
    publisher = make_publisher(parse_publish_target(f"file:{published}"))
    with pytest.raises(KeyboardInterrupt) as stopped:
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                 settings=settings(prometheus, pool_known), clock=clock.clock(),
                 probe_spawn=inline, on_step=stop_at_step_1(reached),
                 on_decision=decisions.append)
    said = interrupted(federation.config_dir, "gamma", ["--publish", f"file:{published}"],
                       [], [], stopped.value)
    summary = interrupted_summary(federation.config_dir, "gamma", said, decisions).summary
    assert summary is not None
    assert "**interrupted**: " in summary and "keeps the ramp of gamma at step 1/2" in summary
    assert "- resume: `federation-deploy" in summary and "--yes`" in summary
    assert "- abort: `federation-deploy" in summary
    # the pre-flight's pass, with its launches, rates and why
    row = next(line for line in summary.splitlines()
               if line.startswith("| 0 (before the first step) | advanced | 0 | "))
    assert " pre-flight | 0 | 0.0% (" in row and "| healthy | healthy: 0 user + " in row, row
