"""Watching the redirector and the member for a ramp: waiting until the redirector serves new
weights (talking while it waits), and judging the member's health as the redirector does."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from federation_deploy.config import Federation, Member
from federation_deploy.durations import Clock, format_duration
from federation_deploy.errors import UsageError
from federation_deploy.health.probe import CheckResult, check_member_health
from federation_deploy.progress import Progress, quiet
from federation_deploy.traffic.launch_metrics import query_launches
from federation_deploy.traffic.live import (
    LiveError,
    check_error_rate,
    fetch_active_hosts,
    fetch_live_generation,
    fetch_pool,
)
from federation_deploy.traffic.ramp.evidence import Risks
from federation_deploy.traffic.ramp.gates import (
    GATES,
    ArgoGate,
    ErrorRateCheck,
    EvidenceGate,
    FixedGate,
    HoldGate,
    LaunchReader,
    TimeGate,
)
from federation_deploy.traffic.ramp.plan import RampStep, weights_disagreement
from federation_deploy.traffic.ramp.probes import (
    DEFAULT_PREFLIGHT_CONCURRENCY,
    DEFAULT_PREFLIGHT_TIMEOUT,
    DEFAULT_PROBE_INTERVAL,
    Launcher,
    PreflightLaunches,
    Probes,
    Spawn,
    in_thread,
    launch,
    warm,
)
from federation_deploy.traffic.weights import PublishedWeights, weights_of

# A wait for the redirector says how it goes at least this often (seconds of the ramp's clock).
WAIT_NOTICE_INTERVAL = 15.0
# the pre-flight's repositories, by default: the most launched of the member's pool
DEFAULT_PREFLIGHT = 20

StepHook = Callable[[RampStep], None]
# Publishes the weights of a federation (traffic.publish.make_publisher makes one).
Publish = Callable[[Federation], None]
# (redirector URL, timeout) -> its /active_hosts; raises traffic.LiveError when unreadable
ActiveHostsReader = Callable[[str, float], dict[str, Any]]
# (health URL, timeout) -> the member's verdict
HealthCheck = Callable[[str, float], CheckResult]
# (redirector URL, timeout) -> the generation it serves (None: unknown or unreadable)
GenerationReader = Callable[[str, float], int | None]
PoolReader = Callable[[str, str, float, int, float], list[str]]
# the federation -> what the publish target serves now (traffic.publish.Publisher.published)
PublishedReader = Callable[[Federation], PublishedWeights | None]


@dataclass(frozen=True)
class RampSettings:
    """How a ramp watches the redirector and the member (all times in seconds)."""

    redirector_url: str | None = None
    prometheus_url: str | None = None
    max_error_rate: float = 0.05
    prometheus_label: str = "member"  # the label naming the member in Prometheus
    check_interval: float = 5.0  # between health checks while holding
    poll_interval: float = 1.0  # between /active_hosts polls while waiting for new weights
    agreeing_answers: int = 3  # consecutive /active_hosts answers with the new weights
    settle_timeout: float = 120.0  # for the redirector to report the new weights
    request_timeout: float = 5.0
    # write the step's evidence (and last_healthy, when healthy) to config at least this often
    # while holding, besides at every verdict change and every new probe
    record_interval: float = 60.0
    # a holding ramp says how it is at the first check this long after its last line (0: at
    # every check), so a long hold is never silent
    heartbeat_interval: float = 60.0
    # what decides a hold (gates.py): evidence (Prometheus and/or probes; with neither the
    # ramp is refused), time (the plan's hold on health checks alone, only when chosen),
    # fixed (the 5-minute error rate, before issue 23) or argo (count + failure limit)
    gate: str = "evidence"
    risks: Risks = field(default_factory=Risks)
    min_hold: float | None = None  # evidence: a step holds at least this (default: hold / 3)
    max_hold: float | None = None  # evidence: inconclusive this long pauses (default: 4 holds)
    probe_repo: str | None = None  # a small repository launched on the member during holds
    probe_interval: float = DEFAULT_PROBE_INTERVAL  # at most one probe this often
    probe_timeout: float = 600.0
    argo_interval: float = 300.0
    argo_count: int = 6
    argo_failure_limit: int = 1
    warm: int = 0  # before step 1, build the member's most launched pool repositories
    warm_timeout: float = 1800.0
    # Prometheus' scrape interval (its default: 1m): --warm's launches (not users') are waited
    # out this long before step 1, so that they are scraped before its window starts
    scrape_interval: float = 60.0
    # the pre-flight (evidence gate): before step 1, launch this many of the member's most
    # launched pool repositories on it and judge them; None: DEFAULT_PREFLIGHT when the ramp
    # knows a redirector (it names the pool), else none; 0: none
    preflight: int | None = None
    preflight_concurrency: int = DEFAULT_PREFLIGHT_CONCURRENCY
    preflight_timeout: float = DEFAULT_PREFLIGHT_TIMEOUT  # one launch (it may build first)

    @property
    def preflight_repos(self) -> int:
        """How many pool repositories the pre-flight launches (0: no pre-flight)."""
        if self.gate != "evidence":
            return 0
        if self.preflight is None:
            return DEFAULT_PREFLIGHT if self.redirector_url else 0
        return self.preflight


@dataclass(frozen=True)
class RampIO:
    """Everything the engine talks to: where weights are published, time, the redirector,
    the member, Prometheus, and whoever follows the progress. Tests replace any of them."""

    publish: Publish
    clock: Clock = field(default_factory=Clock)
    active_hosts: ActiveHostsReader = fetch_active_hosts
    # None: the one health verdict (health/verdict.py) with the federation's prime and pod headroom
    member_health: HealthCheck | None = None
    error_rate: ErrorRateCheck = check_error_rate
    launches: LaunchReader = query_launches  # every member's launches over a window
    launcher: Launcher = launch  # a probe launch on the member's own BinderHub API
    spawn_probe: Spawn = in_thread  # runs a probe's launch in the background
    # (redirector URL, member, final weight, count, timeout) -> the launch paths to warm
    pool: PoolReader = fetch_pool
    progress: Progress = quiet
    on_step: StepHook | None = None  # when the redirector serves a step, before its hold
    # each decision of this run that ends a hold (pass, rollback, pause; --advance: its one
    # check): where, what, why and its evidence record (the step summary's log)
    on_decision: Callable[[dict[str, object]], None] | None = None
    live_generation: GenerationReader = fetch_live_generation
    # None: the target cannot be read (a resume then publishes without asking)
    published: PublishedReader | None = None




class RedirectorWatch:
    """The redirector and the member as one ramp sees them. `settings` and `io` are the
    engine's; `on_newer` is called when the redirector serves a newer
    generation than the config's: it raises, saying who changed what."""

    def __init__(self, member: str, settings: RampSettings, io: RampIO,
                 on_newer: Callable[[], None]) -> None:
        self.member = member
        self.settings = settings
        self.io = io
        self.clock = io.clock
        self.say = io.progress
        self.on_newer = on_newer
        self._noted_no_redirector = False

    def wait_for(self, fed: Federation, expected: Mapping[str, float], ramp_flag: bool,
                 may_be_absent: bool = False, one_off: bool = False) -> str | None:
        """None once agreeing_answers consecutive /active_hosts answers show the expected
        weights at fed's generation; otherwise (after settle_timeout) what the redirector last
        said. may_be_absent: the member may be out of rotation (after a rollback it usually
        is). Says every WAIT_NOTICE_INTERVAL how long it has waited."""
        s = self.settings
        if not s.redirector_url:
            self.note_no_redirector(one_off)
            return None
        start = self.clock.now()
        deadline = start + timedelta(seconds=s.settle_timeout)
        last_said = start
        agreeing = 0
        while True:
            answer, absent = self.agreement(fed, expected, ramp_flag, may_be_absent, one_off)
            agreeing = agreeing + 1 if answer is None else 0
            if agreeing >= s.agreeing_answers:
                return None
            if absent:
                # not listed: either not checked yet since the reload, or failing; a failing
                # /health of its own says which at once instead of after settle_timeout
                health = self.member_health(fed)
                if not health.ok:
                    return f"{self.member} is unhealthy: {health.reason}"
            now = self.clock.now()
            if now >= deadline:
                weight = expected.get(self.member, 0.0)
                return (f"the redirector did not report {self.member} at weight {weight:g} "
                        f"within {format_duration(s.settle_timeout)} "
                        f"(last answer: {answer or 'agreeing'})")
            if (now - last_said).total_seconds() >= WAIT_NOTICE_INTERVAL:
                # a slow helm rollout must not look like a hang
                waited = (now - start).total_seconds()
                self.say(f"waiting for the redirector to serve generation {fed.generation} "
                         f"({format_duration(round(waited))} of "
                         f"{format_duration(s.settle_timeout)}; last answer: "
                         f"{answer or 'agreeing'})")
                last_said = now
            self.clock.sleep(s.poll_interval)

    def agreement(self, fed: Federation, expected: Mapping[str, float], ramp_flag: bool,
                  may_be_absent: bool = False, one_off: bool = False
                  ) -> tuple[str | None, bool]:
        """(None when one /active_hosts answer shows the expected weights, else why not;
        whether the member should be listed there and is not).

        one_off (drain, restore, set, abort): done once this member is served as written, at
        this generation or a newer one that kept it: another writer's change on top of ours
        (two drains at once) is not a failure of ours. A ramp step instead stops at a newer
        generation (on_newer): its plan was made from weights that are no longer served."""
        s = self.settings
        assert s.redirector_url
        try:
            hosts = fed.by_member(self.io.active_hosts(s.redirector_url, s.request_timeout))
        except LiveError as exc:
            return str(exc), False
        wanted = {self.member: expected.get(self.member, 0.0)} if one_off else expected
        # the final weight fed publishes (values.redirector_config): what the redirector must
        # have loaded, besides the weights, before its sticky ramp picks the right repositories
        final = weights_of(fed).final_weights.get(self.member)
        answer = weights_disagreement(hosts, wanted, self.member, ramp_flag, may_be_absent,
                                      final_weight=final)
        if answer is None:
            live = self.io.live_generation(s.redirector_url, s.request_timeout)
            if live is not None and live > fed.generation and not one_off:
                self.on_newer()  # says who changed what, and stops
            if live is not None and (live < fed.generation
                                     or (live != fed.generation and not one_off)):
                answer = f"it serves generation {live} (expected {fed.generation})"
        absent = (answer is not None and not may_be_absent
                  and expected.get(self.member, 0.0) > 0 and self.member not in hosts)
        return answer, absent

    def member_health(self, fed: Federation) -> CheckResult:
        """The member judged as the redirector judges it: /health, pod headroom, and its
        /versions equal to the prime's (health/verdict.py)."""
        member = fed.members[self.member]
        timeout = self.settings.request_timeout
        if self.io.member_health is not None:
            return self.io.member_health(member.health_url, timeout)
        prime = next((m for m in fed.routed if m.prime), None)
        return check_member_health(
            member.health_url, timeout,
            pod_headroom=fed.redirector.pod_headroom,
            versions_url=member.versions_url,
            prime_versions_url=None if prime is None or prime.name == member.name
            else prime.versions_url,
            # a rollout's accepted set, as published to the redirector
            accepted_versions=fed.rollout.accepted_versions if fed.rollout else None,
        )

    def check(self, fed: Federation, member_weight: float) -> str | None:
        """What is wrong with the member now, or None: in rotation, /health (its launches
        are the gate's business, gates.py)."""
        failures: list[str] = []
        s = self.settings
        if s.redirector_url and member_weight > 0:
            try:
                hosts = fed.by_member(self.io.active_hosts(s.redirector_url,
                                                           s.request_timeout))
                if self.member not in hosts:
                    failures.append(f"{self.member} is out of rotation (not in the redirector's "
                                    "/active_hosts: its health checks there fail)")
            except LiveError as exc:
                failures.append(f"the redirector cannot be asked: {exc}")
        elif not s.redirector_url:
            self.note_no_redirector(one_off=False)
        health = self.member_health(fed)
        if not health.ok:
            failures.append(f"{self.member} is unhealthy: {health.reason}")
        return "; ".join(failures) or None

    def note_no_redirector(self, one_off: bool) -> None:
        if self._noted_no_redirector:
            return
        self._noted_no_redirector = True
        if one_off:
            # a one-off change (abort, drain, restore, set) checks no health
            self.say("note: no --redirector-url: published, not waiting for the redirector to "
                     "serve it")
        else:
            self.say("note: no --redirector-url: not waiting for the redirector to report the "
                     "weights, and not checking that the member is in rotation (its /health "
                     "is still checked)")


NO_EVIDENCE = (
    "no evidence source: set redirector.prometheus_url in federation.yaml (the federation's "
    "Prometheus) or pass --prometheus-url, or launch probes with --probe REPO (or "
    "redirector.ramp_probe); to ramp on health checks alone, choose it: --gate time")


def check_gate_settings(settings: RampSettings) -> None:
    """Refuse (UsageError, exit 2) settings a ramp cannot hold steps with, before anything is
    written: the evidence gate with no evidence source at all (it would pass steps on none),
    fixed or argo without Prometheus, a minimum hold above the maximum."""
    s = settings
    if s.gate not in GATES:
        raise UsageError(f"unknown gate {s.gate!r}: one of {', '.join(GATES)}")
    if s.gate == "evidence" and not s.prometheus_url and not s.probe_repo:
        raise UsageError(f"the evidence gate has {NO_EVIDENCE}")
    if s.gate in ("fixed", "argo") and not s.prometheus_url:
        raise UsageError(f"--gate {s.gate} needs --prometheus-url (or redirector.prometheus_url "
                         "in federation.yaml)")
    if s.preflight and s.gate != "evidence":
        raise UsageError(f"--preflight is part of the evidence gate, not --gate {s.gate}")
    if s.preflight and not s.redirector_url:
        raise UsageError("--preflight needs --redirector-url: the redirector names the member's "
                         "pool (its most launched repositories)")
    if s.min_hold is not None and s.max_hold is not None and s.min_hold > s.max_hold:
        raise UsageError(f"--min-hold ({format_duration(s.min_hold)}) is longer than --max-hold "
                         f"({format_duration(s.max_hold)}): a healthy step could never pass "
                         "before an inconclusive one pauses")


def make_gate(settings: RampSettings, io: RampIO, member: Member, hold: float) -> HoldGate:
    """The hold's gate of a ramp of member (gates.py), from its settings: time (health checks
    alone, chosen explicitly), fixed or argo (with Prometheus), else the evidence gate
    (Prometheus and/or probes). Refused settings raise UsageError (check_gate_settings)."""
    s = settings
    check_gate_settings(s)
    label, timeout = s.prometheus_label, s.request_timeout
    if s.gate == "time":
        return TimeGate(hold, "--gate time")
    if s.gate in ("fixed", "argo"):
        assert s.prometheus_url
        if s.gate == "fixed":
            return FixedGate(io.error_rate, s.prometheus_url, member.name, label,
                             s.max_error_rate, hold, timeout)
        return ArgoGate(io.error_rate, s.prometheus_url, member.name, label, s.max_error_rate,
                        s.argo_interval, s.argo_count, s.argo_failure_limit, timeout)
    probes = None
    if s.probe_repo:
        probes = Probes(member.url, s.probe_repo, io.launcher, s.probe_interval,
                        s.probe_timeout, spawn=io.spawn_probe)
    min_hold = s.min_hold if s.min_hold is not None else hold / 3
    max_hold = max(min_hold, s.max_hold if s.max_hold is not None else 4 * hold)
    return EvidenceGate(io.launches, s.prometheus_url, member.name, label, s.risks, min_hold,
                        max_hold, timeout, probes)


def warm_member(settings: RampSettings, io: RampIO, member: Member, final_weight: float,
                say: Progress, clock: Clock | None = None) -> None:
    """--warm N: before step 1, build on the member the N most launched repositories of the
    pool it will serve (the redirector's sticky estimate), with progress and a timeout.
    Failures are said, never raised: a cold cache is slower, not broken. With Prometheus
    (and clock), then waits a scrape interval: the warm launches are scraped before step
    1's window starts, so they are never counted (nor their failures judged) as users'."""
    s = settings
    if s.warm <= 0:
        return
    if not s.redirector_url:
        say("note: --warm needs --redirector-url (the pool is the redirector's estimate): "
            "not warming")
        return
    try:
        repos = io.pool(s.redirector_url, member.name, final_weight, s.warm, s.request_timeout)
    except LiveError as exc:
        say(f"not warming {member.name}: the redirector cannot say its pool: {exc}")
        return
    say(f"warming {member.name}: building the {len(repos)} most launched repositories of "
        f"its pool (at most {format_duration(s.warm_timeout)})")
    report = warm(member.url, repos, s.warm_timeout, say, io.launcher)
    say(report.summary())
    if clock is not None and s.prometheus_url and s.scrape_interval > 0:
        say(f"waiting {format_duration(s.scrape_interval)} (a Prometheus scrape interval) "
            "before step 1: the warm launches are not users' and stay out of its window")
        clock.sleep(s.scrape_interval)


def preflight_pool(settings: RampSettings, pool: PoolReader, member: str,
                   final_weight: float) -> tuple[list[str], str | None]:
    """The pre-flight's repositories (the evidence gate's settings, checked): the member's
    most launched pool repositories as the redirector names them, and what to say when
    there is no pre-flight (None: nothing to say). The ramp and its --dry-run both ask."""
    s = settings
    count = s.preflight_repos
    if count <= 0:
        if s.preflight is None:
            return [], ("note: no pre-flight: it needs --redirector-url (the redirector names "
                        "the member's pool); step 1 is the first evidence of its launches")
        return [], "note: no pre-flight (--preflight 0): step 1 is the first evidence"
    assert s.redirector_url  # check_gate_settings refused an explicit --preflight without it
    try:
        repos = pool(s.redirector_url, member, final_weight, max(count, s.warm),
                     s.request_timeout)
    except LiveError as exc:
        return [], f"no pre-flight of {member}: the redirector cannot say its pool: {exc}"
    if not repos:
        return [], (f"no pre-flight of {member}: the redirector knows no repository of its "
                    "pool yet (its popularity estimate is empty)")
    return repos, None


def make_preflight(settings: RampSettings, io: RampIO, member: Member, final_weight: float,
                   say: Progress, gate: HoldGate) -> EvidenceGate | None:
    """The pre-flight's gate: the evidence gate's tests (against the federation's failure
    rate and launch time) on launches of the member's most launched pool repositories (the
    redirector's sticky estimate, as --warm's; the larger count of the two) on its own
    BinderHub API, at 0%, no minimum hold, at most the gate's maximum. None: no pre-flight
    (not asked for, or the pool is unknown: said, and the ramp goes on as without one)."""
    s = settings
    if not isinstance(gate, EvidenceGate):
        return None
    repos, why = preflight_pool(s, io.pool, member.name, final_weight)
    if why is not None:
        say(why)
    if not repos:
        return None
    launches = PreflightLaunches(member.url, tuple(repos), io.launcher,
                                 s.preflight_concurrency, s.preflight_timeout,
                                 spawn=io.spawn_probe, progress=say, warming=s.warm > 0)
    return EvidenceGate(gate.read, gate.prometheus_url, member.name, gate.label, gate.risks,
                        min_hold=0.0, max_hold=gate.max_hold, timeout=gate.timeout,
                        probes=launches, probe_kind="pre-flight")
