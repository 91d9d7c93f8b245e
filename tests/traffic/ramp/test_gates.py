"""Each verdict over real HTTP: stand-in members launching, a Prometheus-API stand-in scraping
them, the evidence gate asking it; and the ramp engine holding on that evidence (probes
included), with an injected clock (nothing sleeps)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from federation_deploy.commands.ramp import run_ramp
from federation_deploy.errors import VerificationError
from federation_deploy.sandbox.member import StandinHandle
from federation_deploy.sandbox.prometheus import PrometheusServer, start_prometheus
from federation_deploy.traffic.launch_metrics import launches_query, query_launches
from federation_deploy.traffic.live import LiveError, fetch_pool
from federation_deploy.traffic.publish import PublishTarget, make_publisher
from federation_deploy.traffic.ramp.engine import Clock, RampIO, RampSettings
from federation_deploy.traffic.ramp.evidence import Risks
from federation_deploy.traffic.ramp.gates import EvidenceGate
from federation_deploy.traffic.ramp.probes import Probes, launch, warm
from federation_deploy.traffic.ramp.watch import warm_member
from tests.helpers.standin_federation import (
    RedirectorThread,
    StandinFederation,
    send_launches,
    zipf_launch_paths,
)

T0 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
PROBE = "gh/binder-examples/requirements/HEAD"


class Scraping:
    """The ramp's clock: sleeping moves time on and lets the Prometheus stand-in scrape."""

    def __init__(self, prometheus: PrometheusServer) -> None:
        self.t = T0
        self.prometheus = prometheus
        prometheus.standin.scrape(self.t.timestamp())

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)
        self.prometheus.standin.scrape(self.t.timestamp())

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep)


def launch_users(standin: StandinHandle, count: int) -> None:
    """count users' launches straight at a stand-in (as the redirector's 307 sends them)."""
    with requests.Session() as session:
        for i in range(count):
            assert session.get(f"{standin.url}/build/gh/org/repo-{i % 7}/HEAD",
                               timeout=5).status_code == 200


@pytest.fixture
def prometheus(federation: StandinFederation) -> Iterator[PrometheusServer]:
    server = start_prometheus({n: s.url + "/metrics" for n, s in federation.standins.items()})
    try:
        yield server
    finally:
        server.stop()


def gate_verdict(federation: StandinFederation, prometheus: PrometheusServer,
                 gamma: int, others: int = 300) -> EvidenceGate:
    """One window: `others` launches at alpha and beta (2% failing, 30 s), gamma's given."""
    s = federation.standins
    s["alpha"].set_launches(30, failure_every=50)
    s["beta"].set_launches(30, failure_every=50)
    prometheus.standin.scrape(T0.timestamp())
    launch_users(s["alpha"], others // 2)
    launch_users(s["beta"], others // 2)
    launch_users(s["gamma"], gamma)
    until = T0 + timedelta(minutes=20)
    prometheus.standin.scrape(until.timestamp())
    gate = EvidenceGate(query_launches, prometheus.url, "gamma", "member", Risks(),
                        min_hold=600, max_hold=7200, timeout=5)
    gate.begin(T0)
    gate.decision = gate.decide(until)  # type: ignore[attr-defined]
    return gate


def test_prometheus_answers_every_members_window(federation: StandinFederation,
                                                 prometheus: PrometheusServer) -> None:
    s = federation.standins
    s["gamma"].set_launches(90, failure_every=4)
    prometheus.standin.scrape(T0.timestamp())
    launch_users(s["gamma"], 8)
    launch_users(s["alpha"], 5)
    prometheus.standin.scrape((T0 + timedelta(minutes=5)).timestamp())
    launch_users(s["gamma"], 4)  # after the window: not counted
    prometheus.standin.scrape((T0 + timedelta(minutes=9)).timestamp())
    found = query_launches(prometheus.url, T0, T0 + timedelta(minutes=5))
    assert prometheus.standin.queries[-1] == launches_query(300)
    gamma = found.of("gamma")
    assert (gamma.launches, gamma.failures, gamma.times.total) == (8, 2, 6)
    assert gamma.times.quantile(0.5) == pytest.approx(90)  # all in the (60, 120] bucket, at 90
    assert found.others("gamma").launches == 5
    assert found.launch_rate == pytest.approx(13 / 300)
    with pytest.raises(LiveError, match="HTTP 404"):
        query_launches(prometheus.url + "/nothing", T0, T0)
    with pytest.raises(LiveError):
        query_launches("http://127.0.0.1:9", T0, T0, timeout=1)  # nothing listens there


def test_healthy_over_http(federation: StandinFederation, prometheus: PrometheusServer) -> None:
    federation.standins["gamma"].set_launches(30, failure_every=50)
    gate = gate_verdict(federation, prometheus, gamma=150)
    assert gate.last is not None and gate.last.verdict == "healthy", gate.last.explain()
    assert gate.decision.action == "pass"  # type: ignore[attr-defined]


def test_inconclusive_over_http(federation: StandinFederation,
                                prometheus: PrometheusServer) -> None:
    gate = gate_verdict(federation, prometheus, gamma=0)
    assert gate.last is not None and gate.last.verdict == "inconclusive"
    decision = gate.decision  # type: ignore[attr-defined]
    assert decision.action == "hold"
    assert "inconclusive (needs about" in decision.reason
    assert decision.record["user_launches"] == 0


def test_failing_over_http(federation: StandinFederation, prometheus: PrometheusServer) -> None:
    federation.standins["gamma"].set_launches(30, failure_every=4)
    gate = gate_verdict(federation, prometheus, gamma=40)
    assert gate.last is not None and gate.last.verdict == "failing", gate.last.explain()
    assert gate.decision.action == "rollback"  # type: ignore[attr-defined]


def test_slow_over_http(federation: StandinFederation, prometheus: PrometheusServer) -> None:
    federation.standins["gamma"].set_launches(90)
    gate = gate_verdict(federation, prometheus, gamma=20)
    assert gate.last is not None and gate.last.verdict == "slow", gate.last.explain()
    assert "launch time p50/p90 90s" in gate.last.explain()


def inline(work: Callable[[], None]) -> None:
    """A probe's launch run at once (the result waits for the next check all the same)."""
    work()


def test_probes_and_warming_launch_on_the_member(federation: StandinFederation) -> None:
    gamma = federation.standins["gamma"]
    gamma.set_launches(12, failure_every=2)
    probes = Probes(gamma.url, PROBE, launch, interval=60, spawn=inline)
    assert probes.maybe_launch(T0)
    assert not probes.maybe_launch(T0)  # one in flight at most
    first = probes.collect(T0 + timedelta(seconds=5))  # collected at the next check
    assert first is not None and first.ok
    assert not probes.maybe_launch(T0 + timedelta(seconds=30))  # at most one a minute
    assert probes.due_in(T0 + timedelta(seconds=30)) == 30
    assert probes.maybe_launch(T0 + timedelta(seconds=60))
    second = probes.collect(T0 + timedelta(seconds=65))
    assert second is not None and not second.ok and "Launch failed" in second.detail
    window = probes.window(T0, T0 + timedelta(minutes=2))
    assert (window.launches, window.failures) == (2, 1)
    said: list[str] = []
    report = warm(gamma.url, ["gh/a/b/HEAD", "gh/c/d/HEAD"], 60, said.append)
    assert report.built == ("gh/a/b/HEAD",) and report.failed[0][0] == "gh/c/d/HEAD"
    assert "warming 2/2: gh/c/d/HEAD FAILED" in said[-1]
    assert gamma.build_count == 4


def ramp_settings(prometheus: PrometheusServer, **extra: object) -> RampSettings:
    settings = RampSettings(prometheus_url=prometheus.url, check_interval=10,
                            record_interval=600, heartbeat_interval=0, min_hold=120,
                            max_hold=1800)
    return replace(settings, **extra)  # type: ignore[arg-type]


def test_a_step_without_launches_is_not_passed(federation: StandinFederation,
                                               prometheus: PrometheusServer,
                                               tmp_path: Path) -> None:
    clock = Scraping(prometheus)
    said: list[str] = []
    publisher = make_publisher(PublishTarget("file", tmp_path / "config.json"))
    with pytest.raises(VerificationError) as failed:
        # a check a minute: the 30-minute maximum hold in 30 checks, not 180
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                 settings=ramp_settings(prometheus, check_interval=60.0), clock=clock.clock(),
                 progress=said.append)
    message = str(failed.value)
    assert "paused at step 1/2 (10%)" in message and "inconclusive" in message
    assert any("needs about" in line for line in said), said
    state = federation.load().members["gamma"].ramp
    assert state is not None and state.step == 0 and state.inconclusive is not None
    assert state.evidence is not None and state.evidence["verdict"] == "inconclusive"
    assert state.last_healthy is None  # an inconclusive hold is never "healthy"
    # the scheduled job leaves it alone
    outcome = run_ramp(federation.load(), "gamma", publisher, settings=ramp_settings(prometheus),
                       clock=clock.clock(), advance=True)
    assert outcome.status == "paused" and "lack of evidence" in outcome.message


def test_with_probes_a_step_passes_on_probe_evidence(federation: StandinFederation,
                                                     prometheus: PrometheusServer,
                                                     tmp_path: Path) -> None:
    clock = Scraping(prometheus)
    said: list[str] = []
    publisher = make_publisher(PublishTarget("file", tmp_path / "config.json"))
    outcome = run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                       # a check a minute, a probe every 10 s (the probe rate is not the
                       # check rate): the probes are the evidence, the checks are not
                       settings=ramp_settings(prometheus, probe_repo=PROBE,
                                              probe_interval=10.0, check_interval=60.0),
                       clock=clock.clock(), probe_spawn=inline, progress=said.append)
    assert outcome.status == "complete"
    assert any(line.startswith("qualifying gamma at 0% with probes") for line in said)
    passed = [line for line in said if " passes: healthy: 0 user + " in line]
    assert len(passed) == 3, said  # at 0%, 10% and 100%
    assert federation.standins["gamma"].build_count >= 3 * 30  # about 40 probes a step


def test_failing_probes_stop_the_ramp_before_any_user(federation: StandinFederation,
                                                      prometheus: PrometheusServer,
                                                      tmp_path: Path) -> None:
    federation.standins["gamma"].set_launches(20, failure_every=2)
    clock = Scraping(prometheus)
    publisher = make_publisher(PublishTarget("file", tmp_path / "config.json"))
    with pytest.raises(VerificationError, match="failing: 0 user \\+ .* probe launches"):
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                 settings=ramp_settings(prometheus, probe_repo=PROBE, probe_interval=10.0),
                 clock=clock.clock(), probe_spawn=inline)
    state = federation.load().members["gamma"]
    assert state.weight == 0 and state.ramp is not None and state.ramp.step == -1
    assert state.ramp.rolled_back is not None
    assert state.ramp.last_healthy is None  # failing probes: never "healthy"


def test_warm_builds_the_most_launched_repositories_of_the_pool(
    federation: StandinFederation, redirector: RedirectorThread,
) -> None:
    # the redirector learns popularity from users' launches, then names gamma's pool
    send_launches(redirector.url, zipf_launch_paths(3000), federation.url_to_member())
    pool = fetch_pool(redirector.url, "gamma", 100, 5)
    assert len(pool) == 5 and all(p.startswith("gh/") and p.endswith("/HEAD") for p in pool)
    gamma = federation.standins["gamma"]
    gamma.reset_counts()
    gamma.set_launches(40, failure_every=3)
    said: list[str] = []
    settings = RampSettings(gate="time", redirector_url=redirector.url, warm=5, warm_timeout=600)
    warm_member(settings, RampIO(publish=lambda _fed: None), federation.load().members["gamma"],
                100, said.append)
    assert said[0] == ("warming gamma: building the 5 most launched repositories of its pool "
                       "(at most 10m)")
    assert sum(1 for line in said if line.startswith("warming ") and "/5: " in line) == 5
    assert said[-1].startswith("warmed 4 of 5; failed: ")  # the 3rd launch fails: said, not fatal
    assert gamma.build_count == 5
    # without a redirector there is no pool to warm: said, and nothing launched
    said.clear()
    warm_member(RampSettings(gate="time", warm=5), RampIO(publish=lambda _fed: None),
                federation.load().members["gamma"], 100, said.append)
    assert said == ["note: --warm needs --redirector-url (the pool is the redirector's "
                    "estimate): not warming"]


def test_advance_keeps_the_probes_of_earlier_runs_apart(federation: StandinFederation,
                                                        prometheus: PrometheusServer,
                                                        tmp_path: Path) -> None:
    # the scheduled job: one check per process; the probes each run sent stay probes
    clock = Scraping(prometheus)
    publisher = make_publisher(PublishTarget("file", tmp_path / "config.json"))
    settings = ramp_settings(prometheus, probe_repo=PROBE, probe_interval=10.0)
    outcome = run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                       settings=settings, clock=clock.clock(), advance=True)
    assert outcome.status == "started"
    for _ in range(3):
        clock.sleep(60)
        outcome = run_ramp(federation.load(), "gamma", publisher, settings=settings,
                           clock=clock.clock(), probe_spawn=inline, advance=True)
        assert outcome.status == "holding" and "inconclusive (needs about" in outcome.message
    state = federation.load().members["gamma"].ramp
    assert state is not None and state.evidence is not None
    assert (state.evidence["probe_launches"], state.evidence["user_launches"]) == (3, 0)


class Interrupting(Scraping):
    """The ramp's clock, and Ctrl-C once it reaches `at`."""

    def __init__(self, prometheus: PrometheusServer, at: datetime) -> None:
        super().__init__(prometheus)
        self.at = at

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self.t >= self.at:
            raise KeyboardInterrupt


class HeldBuilds:
    """A member whose /build answers only when the test lets it: a probe in flight."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = threading.Semaphore(0)
        self.builds = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                outer.builds += 1
                outer.arrived.release()
                outer.release.wait(30)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(b'data: {"phase": "ready"}\n\n')

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_probe_in_flight_never_holds_up_a_check() -> None:
    member = HeldBuilds()
    try:
        probes = Probes(member.url, PROBE, launch, interval=10)  # a real thread
        gate = EvidenceGate(None, None, "gamma", "member", Risks(), min_hold=60,
                            max_hold=600, timeout=5, probes=probes)
        gate.begin(T0)
        # the check returns while the probe's build is still held by the member
        assert gate.decide(T0).action == "hold"
        assert member.arrived.acquire(timeout=10) and member.builds == 1
        # its interval is over, but one probe is in flight: no second one, nothing counted
        assert gate.decide(T0 + timedelta(seconds=30)).action == "hold"
        assert member.builds == 1 and gate.collected == 0
        assert gate.window(T0 + timedelta(seconds=30)).probes.launches == 0
        member.release.set()
        assert probes.flying is not None and probes.flying.done.wait(10)
        # collected at the next check, counted then; and the next probe goes out
        gate.decide(T0 + timedelta(seconds=40))
        assert gate.collected == 1
        assert gate.window(T0 + timedelta(seconds=40)).probes.launches == 1
        assert member.arrived.acquire(timeout=10) and member.builds == 2
    finally:
        member.stop()


def test_the_probe_rate_is_not_capped_by_the_check_interval(federation: StandinFederation,
                                                             prometheus: PrometheusServer,
                                                             tmp_path: Path) -> None:
    # a check a minute, a probe every 10 s: 83 probes qualify gamma in about 14 minutes, within
    # the 30-minute maximum hold (one probe per check would take 83 minutes: a pause)
    clock = Scraping(prometheus)
    said: list[str] = []
    publisher = make_publisher(PublishTarget("file", tmp_path / "config.json"))
    outcome = run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                       settings=ramp_settings(prometheus, probe_repo=PROBE, probe_interval=10.0,
                                              check_interval=60.0),
                       clock=clock.clock(), probe_spawn=inline, progress=said.append)
    assert outcome.status == "complete", said
    qualified = next(line for line in said if line.startswith("0 (before the first step) "
                                                              "passes: healthy: 0 user + "))
    probes = int(qualified.split("0 user + ")[1].split()[0])
    assert probes >= 40, qualified  # no failures: the failure test accepts after ~42
    assert any("every 10s at most (one in flight" in line for line in said), said


def test_probe_counts_survive_an_interrupt(federation: StandinFederation,
                                          prometheus: PrometheusServer, tmp_path: Path) -> None:
    # interrupted during step 1's hold: the probes it sent are in federation.yaml (written as
    # they come), so the scheduled --advance that carries on never counts them as users'
    clock = Interrupting(prometheus, T0 + timedelta(minutes=90))
    publisher = make_publisher(PublishTarget("file", tmp_path / "config.json"))
    # a check a minute (probes still every 10 s): 90 minutes of fake time in 90 checks, not 540
    settings = ramp_settings(prometheus, probe_repo=PROBE, probe_interval=10.0,
                             check_interval=60.0, min_hold=3600, max_hold=7200)
    with pytest.raises(KeyboardInterrupt):
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="1h",
                 settings=settings, clock=clock.clock(), probe_spawn=inline)
    state = federation.load().members["gamma"].ramp
    assert state is not None and state.step == 0 and state.evidence is not None
    recorded = state.evidence["probe_launches"]
    assert isinstance(recorded, float | int) and recorded >= 5
    assert state.evidence["user_launches"] == 0
    assert state.last_healthy is not None  # healthy (probes alone) while it held
    clock.at = T0 + timedelta(days=1)
    clock.sleep(10)
    outcome = run_ramp(federation.load(), "gamma", publisher, settings=settings,
                       clock=clock.clock(), probe_spawn=inline, advance=True)
    assert outcome.status == "holding", outcome.message
    state = federation.load().members["gamma"].ramp
    assert state is not None and state.evidence is not None
    assert state.evidence["user_launches"] == 0, state.evidence
    assert state.evidence["probe_launches"] == recorded + 1


def test_a_ramp_holding_on_evidence_writes_it_at_least_every_minute(
        federation: StandinFederation, prometheus: PrometheusServer, tmp_path: Path) -> None:
    # no launches at all: an inconclusive hold; `traffic` must show it within a minute
    clock = Interrupting(prometheus, T0 + timedelta(seconds=150))
    publisher = make_publisher(PublishTarget("file", tmp_path / "config.json"))
    with pytest.raises(KeyboardInterrupt):
        run_ramp(federation.load(), "gamma", publisher, steps=(10.0,), hold="10m",
                 settings=replace(ramp_settings(prometheus), record_interval=60.0),
                 clock=clock.clock())
    state = federation.load().members["gamma"].ramp
    assert state is not None and state.evidence is not None
    assert state.evidence["verdict"] == "inconclusive" and state.last_healthy is None
