"""The ramp engine: a ramp's steps, holds and rollbacks, with everything it talks to injected.

A ramp step, in this order (RampEngine._take_step, the one step shared by run and advance):
  1. write federation.yaml (the member's weight and `ramp:` block, round-trip, atomic);
  2. publish the redirector config derived from the file just written (helm or file);
  3. wait until the redirector reports the new weights (N agreeing /active_hosts answers);
  4. hold: check every few seconds that the member is in rotation and its /health is ok, and
     ask the gate (gates.py: the evidence verdict by default) whether to go on, hold on, roll
     back or pause (run), or check and ask once and return (advance, for a scheduled job).
Before step 1, at 0%, the evidence gate's pre-flight (watch.make_preflight: the member's most
launched pool repositories launched on it and judged; without one, the qualifying hold on
probes) is a hold at step index -1 like any other: rollback (stopped at 0), pause, abort wins.
Config is written before publishing, so the file is always the truth: if the run is
interrupted (Ctrl-C, SIGTERM) between 1 and 2, the interrupt handler publishes what the file
says before exiting, and a resumed ramp first makes the published config equal to the file's
step (a process killed outright, or a failed publish, is healed by that re-publish). A failed
check writes and publishes the previous step (0 before the first), keeps the `ramp:` block
at that step PAUSED (`rolled_back:` says when and why: the scheduled --advance leaves it
alone until a person runs `ramp MEMBER`, which restarts it there with a full hold), and
raises VerificationError (exit 1). A resume whose step needs another weight than config's
(the other members' weights changed since it was written) writes and publishes it again
before waiting: it always waits for what it published. The final step (100) sets weight =
to_weight and removes the `ramp:` block: the member is then routed by rendezvous like the
others; an interactive ramp still holds after it and can roll back.

One writer (traffic/weights.py): every write of federation.yaml is a compare-and-swap against the
text this engine last read or wrote, and adds one to `generation:`; every publish refuses an
older generation than the one published. Abort wins: when federation.yaml changed under the
ramp (an abort, a hand edit, another writer) or the redirector serves a newer generation, the
ramp stops at once without rolling back or publishing, says what changed (WeightsConflict,
exit 1), and leaves the change alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from federation_deploy.config import Federation, RampState
from federation_deploy.durations import Clock
from federation_deploy.errors import (
    VerificationError,
    WeightsConflict,
)
from federation_deploy.progress import Progress
from federation_deploy.traffic.formatting import paused_text
from federation_deploy.traffic.ramp.gates import (
    EvidenceGate,
    GateDecision,
    HoldGate,
    TimeGate,
    extended_text,
    healthy_decision,
    heartbeat_text,
    hold_line,
    holding_text,
)
from federation_deploy.traffic.ramp.plan import (
    RampPlan,
    RampStep,
    describe_ramp_policy,
    plan_abort,
    plan_weight,
    same_weight,
    weights_disagreement,
)
from federation_deploy.traffic.ramp.publishing import ConfigKeeper
from federation_deploy.traffic.ramp.state import parse_timestamp, utc_timestamp, write_member
from federation_deploy.traffic.ramp.watch import (
    ActiveHostsReader,
    ErrorRateCheck,
    GenerationReader,
    HealthCheck,
    Publish,
    PublishedReader,
    RampIO,
    RampSettings,
    RedirectorWatch,
    StepHook,
    make_gate,
    make_preflight,
    warm_member,
)
from federation_deploy.traffic.weights import (
    ConfigSnapshot,
    snapshot_of,
)

# what callers import from here (the engine's API): the watch's types, durations' Clock, Progress
__all__ = [
    "ActiveHostsReader", "Clock", "ErrorRateCheck", "GenerationReader", "HealthCheck",
    "Progress", "Publish", "PublishedReader", "RampEngine", "RampIO", "RampOutcome",
    "RampSettings", "RampStep", "StepHook", "weights_disagreement",
]


@dataclass(frozen=True)
class RampOutcome:
    """How a ramp command ended (rollbacks raise VerificationError instead)."""

    member: str
    status: str  # complete | started | advanced | holding | paused | aborted
    step: int  # the step published now; -1 = the member at 0
    weight: float
    share: float
    message: str


class RampEngine(ConfigKeeper):
    """The ramp of one member: all state on the instance (no globals).

    fed is the validated config the plan was made from, loaded an instant before: the engine
    takes it as the file's current content and reloads only when the file changes.
    """

    def __init__(self, fed: Federation, plan: RampPlan, settings: RampSettings,
                 io: RampIO, owner: str | None = None) -> None:
        self.config: ConfigSnapshot = snapshot_of(fed)
        # "rollout": ring 1 of a rollout. Its `ramp:` block says so (`ramp` leaves it alone),
        # and its last step keeps the block and is held and judged like the others: the
        # rollout removes the block once that hold passed (commands/rollout.py)
        self.owner = owner
        self.plan = plan
        self.member = plan.member
        self.settings = settings
        self.io = io
        self.clock = io.clock
        self.say = io.progress
        state = fed.members[self.member].ramp
        self.last_healthy: str | None = state.last_healthy if state is not None else None
        # the gate's last evidence (its record, with the step it is of), kept in `ramp:`
        self.evidence: dict[str, object] | None = (
            dict(state.evidence) if state is not None and state.evidence else None)
        # a ramp's gate (refused settings raise UsageError here, before anything is written);
        # a one-off change (abort, drain, restore, set) holds nothing
        self.gate: HoldGate = (make_gate(settings, io, fed.members[plan.member],
                                         plan.hold_seconds) if plan.steps
                               else TimeGate(0.0, "a one-off weight change"))
        self.dirty = False  # config written, publish not done yet
        self.before_write: ConfigSnapshot | None = None  # put back if the publish is refused
        self.watch = RedirectorWatch(self.member, settings, io, self._ensure_current)

    @classmethod
    def for_abort(cls, fed: Federation, member: str, settings: RampSettings,
                  io: RampIO) -> RampEngine:
        return cls(fed, plan_abort(fed, member), settings, io)

    @classmethod
    def for_change(cls, fed: Federation, member: str, weight: float, settings: RampSettings,
                   io: RampIO) -> RampEngine:
        """An engine for one weight change of member (drain, restore, set): change() writes
        it, publishes and waits as an abort does."""
        return cls(fed, plan_weight(fed, member, weight), settings, io)

    # -- the three modes ----------------------------------------------------------------------

    def run(self) -> RampOutcome:
        """Run (or resume) the ramp to the end: every step held and checked."""
        return self._proceed(once=False)

    def advance(self) -> RampOutcome:
        """Check the current step, and take the next one when its hold is over (or start the
        ramp); returns at once. A ramp paused by a rollback is left alone."""
        return self._proceed(once=True)

    def abort(self) -> RampOutcome:
        """Weight 0 at once, the `ramp:` block removed, published and waited for."""
        self.change(lambda config: write_member(config, self.member, 0.0, None),
                    ramp_flag=False,
                    done=f"{self.member} set to weight 0 and published; ramp removed from config",
                    failed=f"ramp of {self.member} aborted")
        return self._outcome("aborted", -1, f"ramp of {self.member} aborted: weight 0")

    def change(self, write: Callable[[ConfigSnapshot], ConfigSnapshot], *, ramp_flag: bool,
               done: str, failed: str) -> None:
        """One weight change, the plan's weights (index -1): write (a compare-and-swap of
        federation.yaml from this engine's snapshot, returning the new one), publish (put
        back when refused), wait until the redirector serves it. VerificationError (failed,
        then why) when it does not; WeightsConflict when another writer came first."""
        with self._consistent_on_interrupt():
            self.dirty = True
            self.before_write = self.config
            try:
                self.config = write(self.config)
            except WeightsConflict:
                self.dirty = False
                raise
            self._publish(f"{self.member} at weight {self.plan.member_weight_at(-1):g}")
            self.say(done)
            failure = self._wait_for_redirector(-1, ramp_flag=ramp_flag)
            if failure:
                raise VerificationError(f"{failed}, but {failure}")

    def republish(self, *, ramp_flag: bool, done: str, failed: str) -> bool:
        """The rerun of a one-off change whose publish failed after federation.yaml was
        written: publish the config's weights when the target serves others (a newer
        generation there stops it), then wait for the redirector. False: nothing to do."""
        reason = self._publish_needed()
        if reason is None:
            return False
        self.say(f"{reason}: publishing generation {self.fed.generation} from config")
        with self._consistent_on_interrupt():
            self._publish(f"{self.member} at weight {self.plan.member_weight_at(-1):g}")
        self.say(done)
        failure = self._wait_for_redirector(-1, ramp_flag=ramp_flag)
        if failure:
            raise VerificationError(f"{failed}, but {failure}")
        return True

    def _proceed(self, once: bool) -> RampOutcome:
        """Resume from the step config records (or start), then take steps: each one held to
        the end (run), or one step checked once (advance)."""
        if once and isinstance(self.gate, EvidenceGate):
            self.gate.probe_wait = self.settings.probe_timeout  # no next check to collect at
        with self._consistent_on_interrupt():
            state = self.fed.members[self.member].ramp
            index = -1
            if state is None:
                self._say_plan()
                self._at_zero(once, first=True)
            else:
                index = state.step
                if state.paused:
                    if once:
                        # the scheduled job never restarts a ramp that failed its checks
                        return self._outcome("paused", index, paused_message(
                            self.member, state, self._describe(index)))
                    why = (f"since its rollback ({state.rolled_back})" if state.rolled_back
                           else f"for lack of evidence ({state.inconclusive})")
                    self.say(f"restarting the ramp of {self.member}, paused {why}, at "
                             f"{self._describe(index)}")
                    self.evidence = None  # the step is held again from now: new evidence
                    self._record(index, utc_timestamp(self.clock.now()), unpause=True)
                    state = self.fed.members[self.member].ramp
                    assert state is not None
                if once:
                    self._ensure_published(index, state.started)
                    decision = None
                    if index >= 0:
                        self._check_or_rollback(index)
                        if state.started is not None:
                            decision = self._decide(index, self._started(state))
                    else:
                        self._at_zero(once, first=False)
                    if decision is not None and decision.action == "hold":
                        self._record(index, state.started)
                        return self._outcome("holding", index, holding_text(
                            self.gate, f"{self.member} at {self._describe(index)}",
                            self._started(state), decision))
                    if index >= 0 and self.plan.steps[index].final:
                        return self._complete(index)  # its last step held and passed
                else:
                    self.say(f"resuming the ramp of {self.member} at {self._describe(index)}")
                    self._say_gate()
                    self._ensure_published(index, state.started)
                    if index >= 0:
                        self._hook(index)
                        self._hold(index, self._started(state))
                        if self.plan.steps[index].final:
                            return self._complete(index)
                    else:
                        self._at_zero(once, first=False)
            while True:
                index += 1
                started = self._take_step(index)
                if once:
                    self._check_or_rollback(index)
                else:
                    self._hold(index, started)
                step = self.plan.steps[index]
                if step.final and (not once or self.owner is None):
                    return self._complete(index)
                if once:
                    self._record(index, self._state_started())
                    after = ("its last step, judged after a hold of" if step.final
                             else "next step after a hold of")
                    return self._outcome(
                        "started" if state is None else "advanced", index,
                        f"{self.member} at {self._describe(index)}: published and healthy; "
                        f"{after} {self.plan.hold}")

    def _complete(self, index: int) -> RampOutcome:
        step = self.plan.steps[index]
        return self._outcome("complete", index,
                             f"ramp of {self.member} complete: weight {step.weight:g} "
                             f"({step.share:.2f}% of launches)"
                             + (", its last step held and judged" if self.owner is not None
                                else ", routed by rendezvous"))

    # -- steps --------------------------------------------------------------------------------

    def _take_step(self, index: int) -> datetime:
        """Write step index to config, publish it, wait for the redirector, tell on_step;
        returns when the step started (its hold counts from there)."""
        self._ensure_current()
        started = self.clock.now()
        step = self.plan.steps[index]
        self.say(f"step {index + 1}/{len(self.plan.steps)}: {self.member} weight "
                 f"{step.weight:g} ({step.share:.2f}% of launches)")
        self._write(index, utc_timestamp(started))
        self._publish(self._describe(index))
        failure = self._wait_for_redirector(index)
        if failure:
            self._rollback(index, failure)
        self._hook(index)
        return started

    def _hold(self, index: int, started: datetime) -> None:
        """Check the member and ask the gate every check_interval from started: roll back
        (or pause) as soon as it says so, go on once it passes. The first check is at once;
        with a time gate the last is at the end of the hold."""
        gate = self.gate
        gate.begin(started, self._evidence_of(index))
        now = self.clock.now()
        self.say(hold_line(gate, f"holding {self.member} at {self._describe(index)}", started,
                           now))
        last_record = last_said = now
        recorded, extended = self._verdict(), False
        while True:
            self._check_or_rollback(index)
            now = self.clock.now()
            decision = self._decide(index, started, begun=True)
            if not extended and (line := extended_text(gate, self._describe(index), started, now)):
                self.say(line)
                extended = True
            if decision.action == "pass":
                if decision.record is not None:
                    self.say(f"{self._describe(index)} passes: {decision.reason}")
                break
            if (now - last_said).total_seconds() >= self.settings.heartbeat_interval:
                where = (f"step {index + 1}/{len(self.plan.steps)} at "
                         f"{self.plan.steps[index].share:.2f}%" if index >= 0 else "0%")
                self.say(heartbeat_text(gate, where, started, now, decision))
                last_said = now
            # the evidence is durable at every verdict change, every new probe (a resumed
            # run must not count them as users' launches) and every record_interval
            probed = isinstance(gate, EvidenceGate) and gate.collected > 0
            if (self._verdict() != recorded or probed
                    or (now - last_record).total_seconds() >= self.settings.record_interval):
                self._record(index, self._state_started())
                last_record, recorded = now, self._verdict()
            self.clock.sleep(self._next_check(started, now))

    def _next_check(self, started: datetime, now: datetime) -> float:
        """Seconds to the next check: check_interval, sooner at the end of the hold or when a
        probe is due (the probe rate is what --probe-interval says, whatever the checks')."""
        wait = self.settings.check_interval
        remaining = (started + timedelta(seconds=self.gate.deadline) - now).total_seconds()
        if remaining > 0:
            wait = min(wait, remaining)
        probes = getattr(self.gate, "probes", None)
        if isinstance(self.gate, EvidenceGate) and self.gate.passed is None and probes:
            due = probes.due_in(now)
            if due is not None and due > 0:
                wait = min(wait, due)
        return wait

    def _verdict(self) -> object:
        return (self.evidence or {}).get("verdict")

    def _evidence_of(self, index: int) -> dict[str, object] | None:
        """What earlier runs recorded of step index (its probes carry on), if anything."""
        return self.evidence if (self.evidence or {}).get("step") == index + 1 else None

    def _decide(self, index: int, started: datetime, begun: bool = False) -> GateDecision:
        """The gate's decision at step index (held since started), acted on: a rollback or a
        pause raises; the evidence is kept for the `ramp:` block."""
        if not begun:  # --advance: what earlier runs recorded of this step carries on
            self.gate.begin(started, self._evidence_of(index))
        decision = self.gate.decide(self.clock.now())
        self._ensure_current()  # abort wins over whatever the gate says
        if decision.record is not None:
            self.evidence = {"step": index + 1, **decision.record}
        if self.io.on_decision is not None and (decision.action != "hold" or not begun):
            self.io.on_decision({"where": self._describe(index), "action": decision.action,
                                 "reason": decision.reason, **(decision.record or {})})
        if decision.action == "rollback":
            self._rollback(index, decision.reason)
        if decision.action == "pause":
            self._pause(index, decision.reason)
        if healthy_decision(decision):
            # the member seen healthy: never on an inconclusive hold, a pause or a rollback
            self.last_healthy = utc_timestamp(self.clock.now())
        return decision

    def _at_zero(self, once: bool, first: bool) -> None:
        """Before step 1, at 0% (on a start, and again on a resume or restart there): the
        pre-flight, the member's pool repositories launched on it and judged before any user
        is sent to it (watch.make_preflight; its first pass is --warm's); without one, --warm
        alone (on a start) and, in an interactive ramp with probes, the qualifying hold."""
        member = self.fed.members[self.member]
        preflight = make_preflight(self.settings, self.io, member, self.plan.to_weight,
                                   self.say, self.gate)
        if preflight is None:
            if first:
                warm_member(self.settings, self.io, member, self.plan.to_weight, self.say,
                            self.clock)
            if not once and isinstance(self.gate, EvidenceGate) and self.gate.probes:
                self._hold_at_zero(f"qualifying {self.member} at 0% with probes before the "
                                   "first step")
            return
        main, self.gate = self.gate, preflight
        try:
            self._hold_at_zero(f"pre-flight of {self.member} at 0% (nobody routed to it): "
                               f"{preflight.describe()}", {"step": 0, "stage": "pre-flight"})
        finally:
            self.gate = main

    def _hold_at_zero(self, says: str, evidence: dict[str, object] | None = None) -> None:
        self.say(says)
        started = self.clock.now()
        # a `ramp:` block at 0 (weight unchanged): `traffic` shows the hold and its evidence;
        # an interrupted one starts again from the start (its window is new). A new block
        # is a change of the published weights (the member's ramp flag): written with a new
        # generation and published as a step is (one writer), so a resume finds them agreeing
        if self.fed.members[self.member].ramp is None:
            self._ensure_current()
            self._write(-1, utc_timestamp(started))
            self._publish(f"the ramp of {self.member} at {self._describe(-1)}")
            failure = self._wait_for_redirector(-1)
            if failure:
                raise VerificationError(failure)
        self.evidence = evidence
        self._record(-1, utc_timestamp(started))
        self._hold(-1, started)

    def _check_or_rollback(self, index: int) -> None:
        failure = self.watch.check(self.fed, self.plan.member_weight_at(index))
        # abort wins: a failed check after someone else changed the weights (an abort takes
        # the member out of rotation) is theirs to explain, not a reason to roll back
        self._ensure_current()
        if failure:
            self._rollback(index, failure)
        if isinstance(self.gate, TimeGate):
            # health checks alone decide: they are the verdict (other gates: _decide)
            self.last_healthy = utc_timestamp(self.clock.now())

    def _rollback(self, index: int, failure: str) -> NoReturn:
        """Write and publish the previous step (0 before the first) and PAUSE the ramp there
        (`rolled_back:` in its block): the scheduled --advance leaves it alone until a person
        runs `ramp MEMBER` again, so a member that failed is not ramped again unattended."""
        target = max(index - 1, -1)
        self.say(f"check failed at {self._describe(index)}: {failure}")
        self.say(f"rolling back {self.member} to {self._describe(target)}")
        self._ensure_current()
        now = utc_timestamp(self.clock.now())
        self._write(target, now, rolled_back=f"{now} from {self._describe(index)}: {failure}")
        self._publish(f"the rollback to {self._describe(target)}")
        wait_failure = self._wait_for_redirector(target, may_be_absent=True)
        message = (f"ramp of {self.member} rolled back to {self._describe(target)} "
                   f"(weight {self.plan.member_weight_at(target):g}): {failure}")
        if wait_failure:
            message += f"; after the rollback, {wait_failure}"
        if self.owner is None:
            message += (f". The ramp is paused (the scheduled `ramp {self.member} --advance` "
                        f"leaves it alone): when {self.member} is fixed, `federation-deploy "
                        f"ramp {self.member}` restarts it at that step, or `--abort` ends it")
        raise VerificationError(message)

    def _pause(self, index: int, reason: str) -> NoReturn:
        """Too little evidence for too long: keep the step (nothing shows harm), mark the
        ramp paused there (`inconclusive:`), and stop (exit 1) saying why."""
        now = utc_timestamp(self.clock.now())
        where = self._describe(index)
        # at 0 too (a pre-flight without evidence): --advance must not start step 1 then
        self._record(index, self._state_started(), inconclusive=f"{now} at {where}: {reason}")
        message = (f"the ramp of {self.member} is paused at {where} (weight "
                   f"{self.plan.member_weight_at(index):g}), inconclusive: {reason}")
        if self.owner is None:
            message += (f". It stays there (the scheduled `ramp {self.member} --advance` leaves "
                        f"it alone): with more launches (or `--probe REPO`), `federation-deploy "
                        f"ramp {self.member}` holds the step again, or `--abort` ends it")
        raise VerificationError(message)

    # -- config and publishing ------------------------------------------------------------------

    def _state(self, index: int, started: str | None, rolled_back: str | None = None,
               inconclusive: str | None = None) -> RampState | None:
        if index >= 0 and self.plan.steps[index].final and self.owner is None:
            return None  # ramp complete: the member is plain rendezvous
        return RampState(steps=self.plan.percents, step=index, to_weight=self.plan.to_weight,
                         hold=self.plan.hold, started=started, last_healthy=self.last_healthy,
                         rolled_back=rolled_back, inconclusive=inconclusive,
                         evidence=self.evidence, owner=self.owner)

    def _write(self, index: int, started: str | None, rolled_back: str | None = None) -> None:
        if rolled_back is None:
            self.evidence = None  # a new step: its own evidence from now on
        self.dirty = True
        self.before_write = self.config
        try:
            self.config = write_member(self.config, self.member,
                                       self.plan.member_weight_at(index),
                                       self._state(index, started, rolled_back))
        except WeightsConflict as exc:
            self.dirty = False
            raise WeightsConflict(self._stopped(str(exc))) from None

    def _record(self, index: int, started: str | None, unpause: bool = False,
                inconclusive: str | None = None) -> None:
        """Write last_healthy and the evidence of the current step (weights unchanged:
        nothing to publish); unpause: also remove a pause's `rolled_back:` or
        `inconclusive:` marker. Nothing when there is no `ramp:` block (yet) at 0."""
        state = self.fed.members[self.member].ramp
        if index < 0 and state is None:
            return
        marker = None if unpause or state is None else state.rolled_back
        if inconclusive is None and not unpause and state is not None:
            inconclusive = state.inconclusive
        try:
            self.config = write_member(self.config, self.member,
                                       self.plan.member_weight_at(index),
                                       self._state(index, started, marker, inconclusive),
                                       bump=False)
        except WeightsConflict as exc:
            raise WeightsConflict(self._stopped(str(exc))) from None

    def _state_started(self) -> str | None:
        state = self.fed.members[self.member].ramp
        return state.started if state is not None else None

    def _started(self, state: RampState) -> datetime:
        return parse_timestamp(state.started) if state.started else self.clock.now()

    def _ensure_published(self, index: int, started: str | None) -> None:
        """A resume: make the published config equal to the config's step, then wait for the
        redirector to serve it, the member listed (absent = not yet). When the other members'
        weights changed since the step was written (another member's ramp, a hand edit), the
        step's share needs another weight: the step is written again and published, so what
        is waited for is always what was published. A newer published generation stops it."""
        self._ensure_current()
        configured = self.fed.members[self.member].weight
        wanted = self.plan.member_weight_at(index)
        if not same_weight(configured, wanted):
            self.say(f"the other members' weights changed since {self._describe(index)} was "
                     f"written: {self.member} needs weight {wanted:g} for it (config has "
                     f"{configured:g}); writing and publishing the step again")
            self._write(index, started)
            self._publish(self._describe(index))
        elif not (index < 0 and self._republish_zero_block()) and (
                reason := self._publish_needed()):
            self.say(f"{reason}: publishing generation {self.fed.generation} from config")
            self._publish(self._describe(index))
        if self.settings.redirector_url:
            failure = self._wait_for_redirector(index)
            if failure and index >= 0:
                self._rollback(index, failure)
            if failure:
                raise VerificationError(failure)

    # -- the redirector and the member ----------------------------------------------------------

    def _wait_for_redirector(
        self, index: int, ramp_flag: bool | None = None, may_be_absent: bool = False
    ) -> str | None:
        """None once the redirector serves the weights of step index (see
        RedirectorWatch.wait_for), else what it last said."""
        # an owned ramp's last step keeps its `ramp:` block (the rollout removes it)
        flag = (index >= 0 and (self.owner is not None or not self.plan.steps[index].final)) \
            if ramp_flag is None else ramp_flag
        return self.watch.wait_for(self.fed, self.plan.weights_at(index), flag, may_be_absent,
                                   one_off=not self.plan.steps)

    # -- messages -------------------------------------------------------------------------------

    def _hook(self, index: int) -> None:
        if self.io.on_step is not None:
            self.io.on_step(self.plan.steps[index])

    def _describe(self, index: int) -> str:
        if index < 0:
            return "0 (before the first step)"
        step = self.plan.steps[index]
        return f"step {index + 1}/{len(self.plan.steps)} ({step.percent:g}%)"

    def _say_plan(self) -> None:
        shown = ", ".join(f"{s.percent:g}%" for s in self.plan.steps)
        self.say(f"ramp of {self.member}: {shown}, hold {self.plan.hold} after each step; "
                 f"{describe_ramp_policy(self.fed.redirector.ramp_policy)}")
        for note in self.plan.notes:
            self.say(f"note: {note}")
        self._say_gate()

    def _say_gate(self) -> None:
        self.say(f"gate: {self.gate.describe()}")

    def _outcome(self, status: str, index: int, message: str) -> RampOutcome:
        return RampOutcome(member=self.member, status=status, step=index,
                           weight=self.plan.member_weight_at(index),
                           share=self.plan.member_share_at(index), message=message)

def paused_message(member: str, state: RampState, where: str) -> str:
    """What `ramp --advance` says of a paused ramp (the scheduled job's log)."""
    why = paused_text(member, state.rolled_back, state.inconclusive)
    return f"the ramp of {member} at {where} is not advanced: it is {why}"
