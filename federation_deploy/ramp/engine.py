"""The ramp engine: a ramp's steps, holds and rollbacks, with everything it talks to injected.

A ramp step, in this order (RampEngine._take_step, the one step shared by run and advance):
  1. write federation.yaml (the member's weight and `ramp:` block, round-trip, atomic);
  2. publish the redirector config derived from the file just written (helm or file);
  3. wait until the redirector reports the new weights (N agreeing /active_hosts answers);
  4. hold: check every few seconds that the member is in rotation, its /health is ok and,
     with Prometheus, that its launch error rate is under the threshold (run), or check
     once and return (advance, for a scheduled job).
Config is written before publishing, so the file is always the truth: if the run is
interrupted (Ctrl-C, SIGTERM) between 1 and 2, the interrupt handler publishes what the file
says before exiting, and a resumed ramp first makes the published config equal to the file's
step (a process killed outright, or a failed publish, is healed by that re-publish). A failed
check writes and publishes the previous step (0 before the first), keeps the `ramp:` block
at that step with `started` reset (the next attempt waits a full hold), and raises
VerificationError (exit 1). The final step (100) sets weight = to_weight and removes the
`ramp:` block: the member is then routed by rendezvous like the others; an interactive ramp
still holds after it and can roll back.

One writer (weights.py): every write of federation.yaml is a compare-and-swap against the
text this engine last read or wrote, and adds one to `generation:`; every publish refuses an
older generation than the one published. Abort wins: when federation.yaml changed under the
ramp (an abort, a hand edit, another writer) or the redirector serves a newer generation, the
ramp stops at once without rolling back or publishing, says what changed (WeightsConflict,
exit 1), and leaves the change alone.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from ..config import Federation, RampState, load_federation
from ..durations import format_duration
from ..errors import VerificationError, WeightsConflict
from ..traffic import (
    CheckResult,
    LiveError,
    check_error_rate,
    check_member_health,
    fetch_active_hosts,
    fetch_live_generation,
)
from ..weights import (
    ConfigSnapshot,
    PublishedWeights,
    changed_since,
    check_publish,
    restore,
    snapshot_of,
    weight_differences,
    weights_of,
)
from .plan import (
    RampPlan,
    RampStep,
    describe_ramp_policy,
    plan_abort,
    plan_weight,
    weights_disagreement,
)
from .state import parse_timestamp, utc_timestamp, write_member

Progress = Callable[[str], None]
StepHook = Callable[[RampStep], None]
# Publishes the weights of a federation (actions.publish.make_publisher makes one).
Publish = Callable[[Federation], None]
# (redirector URL, timeout) -> its /active_hosts; raises traffic.LiveError when unreadable
ActiveHostsReader = Callable[[str, float], dict[str, Any]]
# (health URL, timeout) -> the member's verdict
HealthCheck = Callable[[str, float], CheckResult]
# (Prometheus URL, member, max rate, member label, timeout) -> the error-rate verdict
ErrorRateCheck = Callable[[str, str, float, str, float], CheckResult]
# (redirector URL, timeout) -> the generation it serves (None: unknown or unreadable)
GenerationReader = Callable[[str, float], int | None]
# the federation -> what the publish target serves now (actions.publish.Publisher.published)
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
    record_interval: float = 300.0  # write last_healthy to config this often while holding
    # a holding ramp says how it is at the first check this long after its last line (0: at
    # every check), so a long hold is never silent
    heartbeat_interval: float = 60.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Clock:
    """Time for the ramp; tests pass a fake whose sleep only moves `now` forward."""

    now: Callable[[], datetime] = _utc_now
    sleep: Callable[[float], None] = time.sleep


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class RampIO:
    """Everything the engine talks to: where weights are published, time, the redirector,
    the member, Prometheus, and whoever follows the progress. Tests replace any of them."""

    publish: Publish
    clock: Clock = field(default_factory=Clock)
    active_hosts: ActiveHostsReader = fetch_active_hosts
    # None: the one health verdict (health.py) with the federation's prime and pod headroom
    member_health: HealthCheck | None = None
    error_rate: ErrorRateCheck = check_error_rate
    progress: Progress = _quiet
    on_step: StepHook | None = None  # when the redirector serves a step, before its hold
    live_generation: GenerationReader = fetch_live_generation
    # None: the target cannot be read (a resume then publishes without asking)
    published: PublishedReader | None = None


@dataclass(frozen=True)
class RampOutcome:
    """How a ramp command ended (rollbacks raise VerificationError instead)."""

    member: str
    status: str  # complete | started | advanced | holding | aborted
    step: int  # the step published now; -1 = the member at 0
    weight: float
    share: float
    message: str


class RampEngine:
    """The ramp of one member: all state on the instance (no globals).

    fed is the validated config the plan was made from, loaded an instant before: the engine
    takes it as the file's current content and reloads only when the file changes.
    """

    def __init__(self, fed: Federation, plan: RampPlan, settings: RampSettings,
                 io: RampIO) -> None:
        self.config: ConfigSnapshot = snapshot_of(fed)
        self.plan = plan
        self.member = plan.member
        self.settings = settings
        self.io = io
        self.clock = io.clock
        self.say = io.progress
        state = fed.members[self.member].ramp
        self.last_healthy: str | None = state.last_healthy if state is not None else None
        self.dirty = False  # config written, publish not done yet
        self.before_write: ConfigSnapshot | None = None  # put back if the publish is refused
        self._noted_no_redirector = False

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

    @property
    def fed(self) -> Federation:
        return self.config.fed

    # -- the three modes ----------------------------------------------------------------------

    def run(self) -> RampOutcome:
        """Run (or resume) the ramp to the end: every step held and checked."""
        return self._proceed(once=False)

    def advance(self) -> RampOutcome:
        """Check the current step, and take the next one when its hold is over (or start the
        ramp); returns at once."""
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
            self._publish()
            self.say(done)
            failure = self._wait_for_redirector(-1, ramp_flag=ramp_flag)
            if failure:
                raise VerificationError(f"{failed}, but {failure}")

    def _proceed(self, once: bool) -> RampOutcome:
        """Resume from the step config records (or start), then take steps: each one held to
        the end (run), or one step checked once (advance)."""
        with self._consistent_on_interrupt():
            state = self.fed.members[self.member].ramp
            index = -1
            if state is None:
                self._say_plan()
            else:
                index = state.step
                if once:
                    self._ensure_published(index)
                    if index >= 0:
                        self._check_or_rollback(index)
                    until = self._started(state) + timedelta(seconds=self.plan.hold_seconds)
                    if state.started is not None and self.clock.now() < until:
                        self._record(index, state.started)
                        return self._outcome(
                            "holding", index,
                            f"{self.member} at {self._describe(index)}: healthy, holding until "
                            f"{utc_timestamp(until)}",
                        )
                else:
                    self.say(f"resuming the ramp of {self.member} at {self._describe(index)}")
                    self._ensure_published(index)
                    if index >= 0:
                        self._hook(index)
                        self._hold(index, self._started(state))
            while True:
                index += 1
                started = self._take_step(index)
                if once:
                    self._check_or_rollback(index)
                else:
                    self._hold(index, started)
                step = self.plan.steps[index]
                if step.final:
                    return self._outcome("complete", index,
                                         f"ramp of {self.member} complete: weight "
                                         f"{step.weight:g} ({step.share:.2f}% of launches), "
                                         "routed by rendezvous")
                if once:
                    self._record(index, self._state_started())
                    return self._outcome(
                        "started" if state is None else "advanced", index,
                        f"{self.member} at {self._describe(index)}: published and healthy; "
                        f"next step after a hold of {self.plan.hold}")

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
        self._publish()
        failure = self._wait_for_redirector(index)
        if failure:
            self._rollback(index, failure)
        self._hook(index)
        return started

    def _hold(self, index: int, started: datetime) -> None:
        """Check every check_interval until hold has passed since started; roll back on the
        first failed check. The first check is at once, the last at the end of the hold."""
        end = started + timedelta(seconds=self.plan.hold_seconds)
        now = self.clock.now()
        if end > now:
            # whole seconds, as the heartbeat and the timestamp say it (not "6.561s")
            left = format_duration(math.ceil((end - now).total_seconds()))
            self.say(f"holding {self.member} at {self._describe(index)} until "
                     f"{utc_timestamp(end)} ({left})")
        last_record = last_said = now
        while True:
            self._check_or_rollback(index)
            now = self.clock.now()
            remaining = (end - now).total_seconds()
            if remaining <= 0:
                break
            if (now - last_said).total_seconds() >= self.settings.heartbeat_interval:
                self.say(self._heartbeat(index, remaining))
                last_said = now
            if (now - last_record).total_seconds() >= self.settings.record_interval:
                self._record(index, self._state_started())
                last_record = now
            self.clock.sleep(min(self.settings.check_interval, remaining))

    def _check_or_rollback(self, index: int) -> None:
        failure = self._check(index)
        # abort wins: a failed check after someone else changed the weights (an abort takes
        # the member out of rotation) is theirs to explain, not a reason to roll back
        self._ensure_current()
        if failure:
            self._rollback(index, failure)
        self.last_healthy = utc_timestamp(self.clock.now())

    def _rollback(self, index: int, failure: str) -> NoReturn:
        target = index - 1
        self.say(f"check failed at {self._describe(index)}: {failure}")
        self.say(f"rolling back {self.member} to {self._describe(target)}")
        self._ensure_current()
        self._write(target, utc_timestamp(self.clock.now()))
        self._publish()
        wait_failure = self._wait_for_redirector(target, may_be_absent=True)
        message = (f"ramp of {self.member} rolled back to {self._describe(target)} "
                   f"(weight {self.plan.member_weight_at(target):g}): {failure}")
        if wait_failure:
            message += f"; after the rollback, {wait_failure}"
        raise VerificationError(message)

    # -- config and publishing ------------------------------------------------------------------

    def _ensure_current(self) -> None:
        """Stop (WeightsConflict) when federation.yaml no longer holds what this engine last
        read or wrote, or the redirector serves a newer generation: someone else changed the
        weights (an abort, a hand edit, another ramp, another machine). Nothing is written,
        published or rolled back: their change stands."""
        change = changed_since(self.config)
        if change is None and self.settings.redirector_url:
            live = self.io.live_generation(self.settings.redirector_url,
                                           self.settings.request_timeout)
            if live is not None and live > self.fed.generation:
                change = (f"the redirector serves generation {live} of the weights, newer than "
                          f"{self.fed.generation} written here (another process or machine "
                          "changed them)")
        if change is not None:
            raise WeightsConflict(self._stopped(change))

    def _stopped(self, change: str) -> str:
        if f"{self.member} drained (" in change:
            return (f"the ramp of {self.member} is paused: {self.member} was drained; the ramp "
                    "stops without rolling back or publishing, its `ramp:` block kept: "
                    f"{change}. When the member is fixed, `federation-deploy traffic restore "
                    f"{self.member}` resumes it at its step")
        aborted = f"{self.member} ramp removed" in change
        what = "was aborted" if aborted else "changed under it"
        return (f"the ramp of {self.member} {what}; it stops without rolling back or "
                f"publishing and leaves that change as it is: {change}. To go on, run the "
                "ramp again: it resumes from federation.yaml")

    def _state(self, index: int, started: str | None) -> RampState | None:
        if index >= 0 and self.plan.steps[index].final:
            return None  # ramp complete: the member is plain rendezvous
        return RampState(steps=self.plan.percents, step=index, to_weight=self.plan.to_weight,
                         hold=self.plan.hold, started=started, last_healthy=self.last_healthy)

    def _write(self, index: int, started: str | None) -> None:
        self.dirty = True
        self.before_write = self.config
        try:
            self.config = write_member(self.config, self.member,
                                       self.plan.member_weight_at(index),
                                       self._state(index, started))
        except WeightsConflict as exc:
            self.dirty = False
            raise WeightsConflict(self._stopped(str(exc))) from None

    def _record(self, index: int, started: str | None) -> None:
        """Write last_healthy of the current step (weights unchanged: nothing to publish)."""
        if index < 0 and self.fed.members[self.member].ramp is None:
            return
        try:
            self.config = write_member(self.config, self.member,
                                       self.plan.member_weight_at(index),
                                       self._state(index, started), bump=False)
        except WeightsConflict as exc:
            raise WeightsConflict(self._stopped(str(exc))) from None

    def _state_started(self) -> str | None:
        state = self.fed.members[self.member].ramp
        return state.started if state is not None else None

    def _started(self, state: RampState) -> datetime:
        return parse_timestamp(state.started) if state.started else self.clock.now()

    def _publish(self) -> None:
        """Publish the config's weights (a compare-and-swap in the publisher). When refused,
        the write that preceded it is put back, so the loser leaves no trace."""
        try:
            self.io.publish(self.fed)
        except WeightsConflict as exc:
            self.dirty = False
            message = str(exc)
            if self.before_write is not None and restore(self.config, self.before_write):
                self.config = self.before_write
                message += (f"; federation.yaml put back to generation "
                            f"{self.before_write.fed.generation}")
            raise WeightsConflict(message) from None
        self.dirty = False

    def _ensure_published(self, index: int) -> None:
        """A resume: make the published config equal to the config's step (publish when it
        is not, or when it cannot be read), then wait for the redirector to serve it, the
        member listed (absent = not yet). A newer published generation stops the ramp."""
        self._ensure_current()
        reason = self._publish_needed(index)
        if reason:
            self.say(f"{reason}: publishing generation {self.fed.generation} from config")
            self._publish()
        if self.settings.redirector_url:
            failure = self._wait_for_redirector(index)
            if failure and index >= 0:
                self._rollback(index, failure)
            if failure:
                raise VerificationError(failure)

    def _publish_needed(self, index: int) -> str | None:
        """Why the published weights are not the config's (None when they are)."""
        if self.io.published is None:
            return "resuming (the publish target cannot be read back)"
        current = self.io.published(self.fed)
        if current is None:
            return "nothing is published there yet"
        check_publish(self.fed, current, "the publish target")  # a newer one stops us here
        differences = weight_differences(weights_of(self.fed), current)
        if current.generation != self.fed.generation or differences:
            shown = "; ".join(differences) or "the same weights"
            return (f"the published weights are generation {current.generation} ({shown}), "
                    f"not the config's")
        return None

    @contextlib.contextmanager
    def _consistent_on_interrupt(self) -> Iterator[None]:
        """On Ctrl-C between a config write and its publish, publish what the file says, so
        that config and the published weights agree when the process exits."""
        try:
            yield
        except KeyboardInterrupt:
            if self.dirty:
                self.say("interrupted: publishing the weights config/federation.yaml has now")
                try:
                    self.io.publish(load_federation(self.fed.config_dir))
                except WeightsConflict as exc:
                    self.say(f"not published: {exc}")
                self.dirty = False
            raise

    # -- the redirector and the member ----------------------------------------------------------

    def _ramp_flag(self, index: int) -> bool:
        return index >= 0 and not self.plan.steps[index].final

    def _wait_for_redirector(
        self, index: int, ramp_flag: bool | None = None, may_be_absent: bool = False
    ) -> str | None:
        """None once agreeing_answers consecutive /active_hosts answers show the weights of
        step index; otherwise (after settle_timeout) what the redirector last said.
        may_be_absent: the member may be out of rotation (after a rollback it usually is)."""
        if not self.settings.redirector_url:
            self._note_no_redirector()
            return None
        flag = self._ramp_flag(index) if ramp_flag is None else ramp_flag
        deadline = self.clock.now() + timedelta(seconds=self.settings.settle_timeout)
        agreeing = 0
        while True:
            answer, absent = self._agreement(index, flag, may_be_absent)
            agreeing = agreeing + 1 if answer is None else 0
            if agreeing >= self.settings.agreeing_answers:
                return None
            if absent:
                # not listed: either not checked yet since the reload, or failing; a failing
                # /health of its own says which at once instead of after settle_timeout
                health = self._member_health()
                if not health.ok:
                    return f"{self.member} is unhealthy: {health.reason}"
            if self.clock.now() >= deadline:
                weight = self.plan.member_weight_at(index)
                return (f"the redirector did not report {self.member} at weight {weight:g} "
                        f"within {format_duration(self.settings.settle_timeout)} "
                        f"(last answer: {answer or 'agreeing'})")
            self.clock.sleep(self.settings.poll_interval)

    def _agreement(
        self, index: int, ramp_flag: bool, may_be_absent: bool = False
    ) -> tuple[str | None, bool]:
        """(None when one /active_hosts answer shows step index's weights, else why not;
        whether the member should be listed there and is not)."""
        assert self.settings.redirector_url
        try:
            hosts = self.io.active_hosts(self.settings.redirector_url,
                                         self.settings.request_timeout)
        except LiveError as exc:
            return str(exc), False
        expected = self.plan.weights_at(index)
        answer = weights_disagreement(hosts, expected, self.member, ramp_flag, may_be_absent)
        if answer is None:
            live = self.io.live_generation(self.settings.redirector_url,
                                           self.settings.request_timeout)
            if live is not None and live > self.fed.generation:
                self._ensure_current()  # says who changed what, and stops
            if live is not None and live != self.fed.generation:
                answer = f"it serves generation {live} (expected {self.fed.generation})"
        absent = (answer is not None and not may_be_absent
                  and expected.get(self.member, 0.0) > 0 and self.member not in hosts)
        return answer, absent

    def _member_health(self) -> CheckResult:
        """The member judged as the redirector judges it: /health, pod headroom, and its
        /versions equal to the prime's (health.py)."""
        member = self.fed.members[self.member]
        timeout = self.settings.request_timeout
        if self.io.member_health is not None:
            return self.io.member_health(member.health_url, timeout)
        prime = next((m for m in self.fed.routed if m.prime), None)
        return check_member_health(
            member.health_url, timeout,
            pod_headroom=self.fed.redirector.pod_headroom,
            versions_url=member.versions_url,
            prime_versions_url=None if prime is None or prime.name == member.name
            else prime.versions_url,
        )

    def _check(self, index: int) -> str | None:
        """What is wrong with the member now, or None: in rotation, /health, error rate."""
        failures: list[str] = []
        s = self.settings
        if s.redirector_url and self.plan.member_weight_at(index) > 0:
            try:
                hosts = self.io.active_hosts(s.redirector_url, s.request_timeout)
                if self.member not in hosts:
                    failures.append(f"{self.member} is out of rotation (not in the redirector's "
                                    "/active_hosts: its health checks there fail)")
            except LiveError as exc:
                failures.append(f"the redirector cannot be asked: {exc}")
        elif not s.redirector_url:
            self._note_no_redirector()
        health = self._member_health()
        if not health.ok:
            failures.append(f"{self.member} is unhealthy: {health.reason}")
        if s.prometheus_url:
            rate = self.io.error_rate(s.prometheus_url, self.member, s.max_error_rate,
                                      s.prometheus_label, s.request_timeout)
            if not rate.ok:
                failures.append(f"{self.member}: {rate.reason}")
        return "; ".join(failures) or None

    def _note_no_redirector(self) -> None:
        if not self._noted_no_redirector and not self.plan.steps:
            # a one-off change (abort, drain, restore, set) checks no health
            self.say("note: no --redirector-url: published, not waiting for the redirector to "
                     "serve it")
            self._noted_no_redirector = True
        if not self._noted_no_redirector:
            self.say("note: no --redirector-url: not waiting for the redirector to report the "
                     "weights, and not checking that the member is in rotation (its /health "
                     "is still checked)")
            self._noted_no_redirector = True

    # -- messages -------------------------------------------------------------------------------

    def _hook(self, index: int) -> None:
        if self.io.on_step is not None:
            self.io.on_step(self.plan.steps[index])

    def _describe(self, index: int) -> str:
        if index < 0:
            return "0 (before the first step)"
        step = self.plan.steps[index]
        return f"step {index + 1}/{len(self.plan.steps)} ({step.percent:g}%)"

    def _heartbeat(self, index: int, remaining: float) -> str:
        step = self.plan.steps[index]
        return (f"step {index + 1}/{len(self.plan.steps)} at {step.share:.2f}%: healthy, "
                f"{format_duration(math.ceil(remaining))} left")

    def _say_plan(self) -> None:
        shown = ", ".join(f"{s.percent:g}%" for s in self.plan.steps)
        self.say(f"ramp of {self.member}: {shown}, hold {self.plan.hold} after each step; "
                 f"{describe_ramp_policy(self.fed.redirector.ramp_policy)}")
        for note in self.plan.notes:
            self.say(f"note: {note}")

    def _outcome(self, status: str, index: int, message: str) -> RampOutcome:
        return RampOutcome(member=self.member, status=status, step=index,
                           weight=self.plan.member_weight_at(index),
                           share=self.plan.member_share_at(index), message=message)
