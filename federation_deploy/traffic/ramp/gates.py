"""The gates a ramp step's hold asks whether to pass, hold on, roll back or pause.

- EvidenceGate (the default with Prometheus or probes): the evidence verdict (evidence.py)
  of the step's window, the new member against the rest of the federation; healthy passes
  once min_hold has passed, inconclusive holds on up to max_hold and then pauses, failing or
  slow rolls back at once.
- TimeGate (`--gate time`, only when chosen: the evidence gate with no evidence source is
  refused): the plan's hold passes; only the health checks can roll back. The ramp says so
  when it starts.
- FixedGate (`--gate fixed`, the ramp before issue 23): roll back when the launch error rate
  over 5 minutes is above a threshold; no launches pass.
- ArgoGate (`--gate argo`, for comparison, like Argo Rollouts' analysis): every interval one
  measurement of the error rate over that interval; more than failure_limit failed
  measurements roll back; `count` measurements pass (no launches: the measurement passes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from federation_deploy.durations import format_duration
from federation_deploy.health.probe import CheckResult
from federation_deploy.traffic.launch_metrics import FederationLaunches
from federation_deploy.traffic.live import LiveError
from federation_deploy.traffic.ramp.evidence import (
    HEALTHY,
    INCONCLUSIVE,
    HoldDecision,
    Launches,
    Risks,
    Verdict,
    Window,
    decide_hold,
    judge,
)
from federation_deploy.traffic.ramp.probes import ProbeSource
from federation_deploy.traffic.ramp.state import utc_timestamp

GATES = ("evidence", "time", "fixed", "argo")
# the federation's failure rate is read over at least this long (evidence.py, p0)
BASELINE_SECONDS = 3600.0

# (Prometheus URL, since, until, member label, timeout) -> every member's launches
LaunchReader = Callable[[str, datetime, datetime, str, float], FederationLaunches]
# (Prometheus URL, member, max rate, member label, timeout) -> the error-rate verdict
ErrorRateCheck = Callable[[str, str, float, str, float], CheckResult]


@dataclass(frozen=True)
class GateDecision:
    """hold | pass | rollback | pause, why, and the evidence behind it (None: no evidence)."""

    action: str
    reason: str
    record: Mapping[str, object] | None = None


class HoldGate(Protocol):
    """One step's hold: begin() when the step is served, decide() at every check; the hold
    ends by deadline seconds (the plan's hold, or the evidence gate's maximum)."""

    deadline: float

    def describe(self) -> str: ...

    def begin(self, started: datetime, record: Mapping[str, object] | None = None) -> None:
        ...

    def decide(self, now: datetime) -> GateDecision: ...


class TimeGate:
    """The plan's hold, and nothing else to judge by."""

    def __init__(self, hold: float, why: str) -> None:
        self.hold = hold
        self.deadline = hold
        self.why = why
        self.started: datetime | None = None

    def describe(self) -> str:
        return f"steps pass after their hold on health checks alone ({self.why})"

    def begin(self, started: datetime, record: Mapping[str, object] | None = None) -> None:
        self.started = started

    def decide(self, now: datetime) -> GateDecision:
        assert self.started is not None
        held = (now - self.started).total_seconds()
        return GateDecision("pass" if held >= self.hold else "hold", "healthy")


class FixedGate:
    """Today's gate: the 5-minute error rate under a threshold; no launches pass."""

    def __init__(self, check: ErrorRateCheck, prometheus_url: str, member: str, label: str,
                 max_rate: float, hold: float, timeout: float) -> None:
        self.check = check
        self.args = (prometheus_url, member, max_rate, label, timeout)
        self.max_rate = max_rate
        self.hold = hold
        self.deadline = hold
        self.started: datetime | None = None

    def describe(self) -> str:
        return (f"fixed gate: roll back when the 5-minute launch error rate is above "
                f"{self.max_rate:.1%}; steps pass after their hold")

    def begin(self, started: datetime, record: Mapping[str, object] | None = None) -> None:
        self.started = started

    def decide(self, now: datetime) -> GateDecision:
        assert self.started is not None
        result = self.check(*self.args)
        if not result.ok:
            return GateDecision("rollback", result.reason)
        held = (now - self.started).total_seconds()
        return GateDecision("pass" if held >= self.hold else "hold", result.reason)


class ArgoGate:
    """Argo Rollouts' analysis: `count` measurements every `interval`, each the error rate
    over that interval under max_rate (no launches pass, as templates guarding isNaN do);
    more than failure_limit failed measurements roll back."""

    def __init__(self, check: ErrorRateCheck, prometheus_url: str, member: str, label: str,
                 max_rate: float, interval: float, count: int, failure_limit: int,
                 timeout: float) -> None:
        self.check = check
        self.args = (prometheus_url, member, max_rate, label, timeout)
        self.max_rate = max_rate
        self.interval = interval
        self.count = count
        self.failure_limit = failure_limit
        self.deadline = interval * count
        self.started: datetime | None = None
        self.measured = 0
        self.failed = 0

    def describe(self) -> str:
        return (f"argo gate: {self.count} measurements every {self.interval:.0f}s of the error "
                f"rate (at most {self.max_rate:.1%}); more than {self.failure_limit} failed "
                "roll back")

    def begin(self, started: datetime, record: Mapping[str, object] | None = None) -> None:
        self.started, self.measured, self.failed = started, 0, 0

    def decide(self, now: datetime) -> GateDecision:
        assert self.started is not None
        due = int((now - self.started).total_seconds() // self.interval)
        reason = f"{self.measured} of {self.count} measurements, {self.failed} failed"
        while self.measured < min(due, self.count):
            self.measured += 1
            result = self.check(*self.args)
            if not result.ok:
                self.failed += 1
            reason = (f"measurement {self.measured}/{self.count}: {result.reason} "
                      f"({self.failed} failed)")
            if self.failed > self.failure_limit:
                return GateDecision("rollback", reason)
        return GateDecision("pass" if self.measured >= self.count else "hold", reason)


class EvidenceGate:
    """The evidence verdict of the step's window; probes during the hold when configured."""

    def __init__(self, read: LaunchReader | None, prometheus_url: str | None, member: str,
                 label: str, risks: Risks, min_hold: float, max_hold: float,
                 timeout: float, probes: ProbeSource | None = None,
                 probe_kind: str = "probe") -> None:
        self.read = read
        self.prometheus_url = prometheus_url
        self.member = member
        self.label = label
        self.risks = risks
        self.min_hold = min_hold
        self.max_hold = max_hold
        self.deadline = max_hold
        self.timeout = timeout
        self.probes = probes
        self.probe_kind = probe_kind  # "probe", or "pre-flight" (its launches, at 0%)
        self.started: datetime | None = None
        self.last: Verdict | None = None
        # the step's tests stop once they decide healthy (Wald's SPRT: looking on would add
        # to the false-rollback risk); the step then waits out min_hold on health checks
        self.passed: Verdict | None = None
        self.accepted: frozenset[str] = frozenset()  # the step's tests that said "as good"
        # probes an earlier process sent at this step (`ramp --advance` runs one check per
        # process): from the `ramp:` block's evidence, so they stay apart from users'
        self.carried = Launches()
        # `ramp --advance` has no next check to collect a probe at: it waits this long (real
        # seconds) for the one it started; None (a running ramp): never waits
        self.probe_wait: float | None = None
        self.collected = 0  # probes collected by the last decide()

    def describe(self) -> str:
        sources = []
        if self.prometheus_url:
            sources.append("users' launches from Prometheus")
        if self.probes is not None:
            sources.append(self.probes.rate())
        if self.probe_kind == "pre-flight" and self.probes is not None:
            return (f"{self.probes.rate()}, judged as a step is (false-promotion risk "
                    f"{self.risks.false_promotion:.0%} per test, false-rollback risk "
                    f"{self.risks.false_rollback:.1%}): as good as the rest goes on to step 1; "
                    f"failing or slow stops the ramp at 0; inconclusive after "
                    f"{format_duration(self.max_hold)} pauses it there")
        return (f"evidence gate ({' and '.join(sources)}): a step passes when its launches "
                f"show {self.member} as good as the rest (false-promotion risk "
                f"{self.risks.false_promotion:.0%} per test, false-rollback risk "
                f"{self.risks.false_rollback:.1%} per step), after at least "
                f"{self.min_hold:.0f}s; inconclusive holds up to {self.max_hold:.0f}s, then "
                "pauses; failing or slow rolls back at once")

    def begin(self, started: datetime, record: Mapping[str, object] | None = None) -> None:
        """record: the `ramp:` block's evidence of this step, from an earlier process."""
        self.started = started
        self.last = None
        self.passed = None
        self.accepted = frozenset()
        self.carried = carried_probes(record) if record else Launches()

    def window(self, now: datetime) -> Window:
        """The step's evidence so far: users' launches (the member's, probes taken out),
        probes', the others'."""
        assert self.started is not None
        probed = self.carried + (self.probes.window(self.started, now)
                                 if self.probes is not None else Launches())
        if self.read is None or not self.prometheus_url:
            return Window(users=Launches(), probes=probed, rest=Launches(),
                          seconds=(now - self.started).total_seconds(),
                          probe_kind=self.probe_kind)
        found = self.read(self.prometheus_url, self.started, now, self.label, self.timeout)
        member = found.of(self.member)
        # BinderHub counts the probes among the member's launches: their counts come out of
        # the users'; launch times cannot be told apart, so the member's histogram (users'
        # and probes' together) stays with the users and the probes bring none of their own
        users = Launches(max(0.0, member.launches - probed.launches),
                         max(0.0, member.failures - probed.failures), member.times)
        baseline = None
        if found.seconds < BASELINE_SECONDS:
            longer = self.read(self.prometheus_url, now - timedelta(seconds=BASELINE_SECONDS),
                               now, self.label, self.timeout)
            baseline = longer.others(self.member)
        return Window(users=users, probes=Launches(probed.launches, probed.failures),
                      rest=found.others(self.member), seconds=found.seconds,
                      baseline=baseline, probe_kind=self.probe_kind)

    def decide(self, now: datetime) -> GateDecision:
        assert self.started is not None
        held = (now - self.started).total_seconds()
        if self.passed is not None:
            # the step's tests decided; a probe still in flight is collected (not judged)
            self.collected = self.probes.gather(now) if self.probes is not None else 0
            return self._settled(decide_hold(self.passed, held, self.min_hold, self.max_hold),
                                 self.passed, now)
        self.collected = 0
        if self.probes is not None:
            # in the background: a check never waits on a probe (but --advance, which has no
            # next check, waits for the one it starts)
            self.collected += self.probes.gather(now)
            if self.probes.maybe_launch(now) and self.probe_wait is not None:
                self.collected += self.probes.gather(now, wait=self.probe_wait)
        try:
            window = self.window(now)
        except LiveError as exc:
            # no answer is no evidence: inconclusive (the hold goes on, up to max_hold)
            held = (now - self.started).total_seconds()
            if held >= self.max_hold:
                return GateDecision("pause", f"Prometheus could not be asked for "
                                    f"{held:.0f}s (the maximum hold): {exc}")
            return GateDecision("hold", f"{INCONCLUSIVE}: Prometheus cannot be asked: {exc}")
        verdict = judge(window, self.risks, self.accepted)
        self.last = verdict
        self.accepted = self.accepted | {name for name, test in (
            ("failures", verdict.failures), ("times", verdict.times))
            if test.decision == "accept"}
        if verdict.verdict == HEALTHY:
            self.passed = verdict
        return self._settled(decide_hold(verdict, held, self.min_hold, self.max_hold),
                             verdict, now)

    def _settled(self, decision: HoldDecision, verdict: Verdict, now: datetime
                 ) -> GateDecision:
        """A pass holds on while the launches it sent are in flight (the pre-flight's: one
        ending at step 1 would be counted as a user's)."""
        why = (self.probes.settle(now) if decision.action == "pass" and self.probes is not None
               else None)
        if why:
            return GateDecision("hold", f"{decision.reason}; {why}", verdict.as_record())
        return GateDecision(decision.action, decision.reason, verdict.as_record())


def healthy_decision(decision: GateDecision) -> bool:
    """Whether a decision says the member is healthy (its health checks passed, and with
    evidence, the verdict is healthy): only then is `last_healthy` recorded."""
    if decision.action not in ("hold", "pass"):
        return False
    return decision.record is None or decision.record.get("verdict") == HEALTHY


# -- what a hold says ---------------------------------------------------------------------------


def hold_line(gate: HoldGate, where: str, started: datetime, now: datetime) -> str:
    """The line a hold starts with: `holding gamma at step 1/6 (1%) until ...`."""
    if isinstance(gate, EvidenceGate):
        least = started + timedelta(seconds=gate.min_hold)
        return (f"{where} until the evidence decides: at least until {utc_timestamp(least)}, "
                f"at most {format_duration(gate.max_hold)}")
    end = started + timedelta(seconds=gate.deadline)
    if end <= now:
        return f"{where}: its hold is over"
    # whole seconds, as the heartbeat and the timestamp say it (not "6.561s")
    left = format_duration(math.ceil((end - now).total_seconds()))
    return f"{where} until {utc_timestamp(end)} ({left})"


def heartbeat_text(gate: HoldGate, where: str, started: datetime, now: datetime,
                   decision: GateDecision) -> str:
    """A holding ramp's heartbeat: the evidence so far, or the time left."""
    if decision.record is not None or isinstance(gate, EvidenceGate):
        return f"{where}: {decision.reason}"
    remaining = (started + timedelta(seconds=gate.deadline) - now).total_seconds()
    return f"{where}: healthy, {format_duration(math.ceil(max(0.0, remaining)))} left"


def extended_text(gate: HoldGate, where: str, started: datetime, now: datetime) -> str | None:
    """Once the minimum hold is over and the evidence is still inconclusive, the hold goes on
    for evidence: what it needs and until when at most (None: not that case)."""
    if not isinstance(gate, EvidenceGate) or gate.passed is not None or gate.last is None:
        return None
    if gate.last.verdict != INCONCLUSIVE or (now - started).total_seconds() < gate.min_hold:
        return None
    until = utc_timestamp(started + timedelta(seconds=gate.max_hold))
    return (f"{where}: holding longer: inconclusive, needs ~{gate.last.needed} more launches, "
            f"until at most {until} (then it pauses)")


def holding_text(gate: HoldGate, where: str, started: datetime, decision: GateDecision) -> str:
    """What `ramp --advance` says of a step still holding."""
    if decision.record is not None or isinstance(gate, EvidenceGate):
        return f"{where}: holding: {decision.reason}"
    until = started + timedelta(seconds=gate.deadline)
    return f"{where}: healthy, holding until {utc_timestamp(until)}"


def carried_probes(record: Mapping[str, object]) -> Launches:
    """The probes a `ramp:` block's evidence counted (launches, failures), to carry on."""
    def number(key: str) -> float:
        value = record.get(key)
        return float(value) if isinstance(value, int | float) else 0.0

    return Launches(number("probe_launches"), number("probe_failures"))
