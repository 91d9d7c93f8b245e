"""Command `rollout CHART VERSION`: a new chart version through the federation in rings.

The recipe (Rollout.run), every step a write of federation.yaml through the one writer:
  0. the bump: charts.CHART.version = VERSION and a `rollout:` block (from, to, ring) in one
     write, once everything is checked (the version, the rings, ring 1's member: a refused
     rollout writes nothing); members not yet upgraded keep `from` meanwhile
     (config/rings.py), so a deploy of any member during the rollout changes nothing it
     should not. Routed members this tool does not deploy (cloud: external) that report the
     chart in their /versions are recorded in `rollout.external` with their version;
  1. ring 0 (rings.staging): deploy the chart's releases at VERSION (the deploy's own stages
     for one member, its version overridden), verify /health and that /versions reports it;
     before each deploy `upgrading: MEMBER` is written, after it the member joins `upgraded`;
  2. ring 1 (rings.canary, or the smallest healthy member): published at weight 0 with the
     accepted set {from, to} (the redirector keeps either version in rotation), deployed and
     verified, then ramped back to its weight through rings.shares with the ramp's engine and
     gates (its evidence: the new version against the members on the old one). Its `ramp:`
     block says `owner: rollout` (`ramp` leaves it alone) and its last step is held and
     judged like the others; only then is `ring1_passed_at` written and ring 1 over. A
     failure (or its ramp found paused) rolls it back: helm rollback of its releases, its
     weight restored, the accepted set withdrawn, the rollout paused (`rolled_back:`), exit 1;
  3. ring 2: every other member with the chart, in CD order, deployed and verified;
  4. the end: while a member in `rollout.external` still reports `from`, the block (and so the
     accepted set) stays and the rollout says it waits for them (status `waiting`, exit 0;
     the next --resume asks them again); then the `rollout:` block is removed and published:
     one version everywhere, the accepted set gone.
Abort wins (`--abort`): every member recorded as upgrading or upgraded, and every other member
whose /versions reports the new version, rolled back; the pin back to `from`, ring 1's weight
restored, published; a running rollout sees federation.yaml changed and stops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NoReturn

from federation_deploy.commands.freeze import freeze_notice, refuse_when_frozen
from federation_deploy.commands.ramp import ABORT_ATTEMPTS, ramp_io
from federation_deploy.commands.result import CommandResult
from federation_deploy.commands.rollout_io import (
    RolloutIO,
    check_version,
    external_versions,
    healthy_hosts,
    helm_rollback,
    production_io,
)
from federation_deploy.commands.rollout_plan import (
    check_rings,
    check_target,
    dry_run,
    external_note,
)
from federation_deploy.commands.step_summary import rollout_markdown
from federation_deploy.config import (
    Federation,
    Member,
    RolloutState,
    load_federation,
)
from federation_deploy.config.rings import SMALLEST
from federation_deploy.durations import Clock
from federation_deploy.errors import (
    FederationDeployError,
    UsageError,
    VerificationError,
    WeightsConflict,
)
from federation_deploy.progress import Progress
from federation_deploy.runner import Runner
from federation_deploy.traffic.publish import PublishRequest, publisher_for
from federation_deploy.traffic.ramp.engine import RampEngine, RampIO, RampSettings
from federation_deploy.traffic.ramp.plan import resolve_plan
from federation_deploy.traffic.ramp.state import utc_timestamp
from federation_deploy.traffic.rings import (
    OWNER,
    Rings,
    chart_releases,
    choose_canary,
    plan_rings,
    upgraded_with,
    write_rollout,
)
from federation_deploy.traffic.weights import (
    ConfigChanged,
    ConfigSnapshot,
    read_snapshot,
    snapshot_of,
    writer_lock,
)

__all__ = ["RolloutIO", "abort_rollout", "check_rings", "check_version", "dry_run",
           "helm_rollback", "run_rollout"]


@dataclass(frozen=True)
class RolloutOutcome:
    chart: str
    version: str
    status: str  # complete | holding | waiting | aborted
    message: str


def before_rollout(fed: Federation, action: str, clock: Clock | None = None,
                   progress: Progress | None = None) -> None:
    """What every rollout (a run, a resume, --advance) passes before it changes anything: the
    one place for federation-wide refusals. No `rings:` is bad usage; a freeze in force
    refuses it (exit 2, commands/freeze.py). A rollout in a sandbox is allowed: its members
    are stand-ins. (An abort does not pass here: it must always be possible.)"""
    check_rings(fed)
    refuse_when_frozen(fed, action, clock, progress)


class Rollout:
    """One rollout: the config snapshot it last read or wrote, its rings, its IO."""

    def __init__(self, fed: Federation, settings: RampSettings, io: RolloutIO) -> None:
        self.config: ConfigSnapshot = snapshot_of(fed)
        self.settings = settings
        self.io = io
        self.say = io.progress

    @property
    def fed(self) -> Federation:
        return self.config.fed

    @property
    def state(self) -> RolloutState:
        assert self.fed.rollout is not None
        return self.fed.rollout

    # -- the recipe --------------------------------------------------------------------------

    def run(self, chart: str, version: str, *, resume: bool = False, advance: bool = False,
            allow_downgrade: bool = False) -> RolloutOutcome:
        """The recipe to the end; advance (a scheduled job): rings 0 and 2 as always, ring 1
        one step of its ramp per call (returning `holding` until its last step passed)."""
        from_version = self._check_start(chart, version, resume, allow_downgrade)
        rings = self._rings(chart)  # refused (ring 1 impossible) before anything is written
        self._begin(chart, version, from_version, resume)
        self.say(f"rollout of {chart} {self.state.from_version} -> {version}: ring 0 "
                 f"{', '.join(rings.staging) or '(none)'}; ring 1 {rings.canary}; ring 2 "
                 f"{', '.join(rings.rest) or '(none)'}"
                 + (f"; {external_note(dict(self.state.external), version)}"
                    if self.state.external else ""))
        try:
            if self.state.ring <= 0:
                self._write(replace(self.state, ring=0), bump=False)
                for name in rings.staging:
                    self._upgrade(name, 0)
            if self.state.ring <= 1:
                waiting = self._ring_one(rings.canary, advance)
                if waiting is not None:
                    return RolloutOutcome(chart, version, "holding", waiting)
            if self.state.ring < 2:
                self._write(replace(self.state, ring=2), bump=False)
            for name in rings.rest:
                self._upgrade(name, 2)
        except ConfigChanged as exc:
            raise WeightsConflict(f"the rollout of {chart} {version} stops (federation.yaml "
                                  f"changed under it: an abort wins): {exc}") from None
        return self._end(rings.canary)

    def _check_start(self, chart: str, version: str, resume: bool,
                     allow_downgrade: bool) -> str | None:
        """Everything a start or resume refuses, before anything is written; the version it
        goes from for a new rollout (None: one is recorded)."""
        state = self.fed.rollout
        if state is not None and (state.chart, state.to_version) != (chart, version):
            raise UsageError(
                f"a rollout of {state.chart} {state.to_version} is in progress (ring "
                f"{state.ring}, since {state.started}): one rollout at a time. Resume it "
                f"(`federation-deploy rollout {state.chart} {state.to_version} --resume`) or "
                "abort it (`federation-deploy rollout --abort`) first")
        if state is None:
            return check_target(self.fed, chart, version, allow_downgrade)
        if state.rolled_back is not None and not resume:
            raise VerificationError(
                f"the rollout of {chart} {version} is paused since its rollback "
                f"({state.rolled_back}): `federation-deploy rollout {chart} {version} "
                "--resume` retries it, `--abort` ends it")
        return None

    def _begin(self, chart: str, version: str, from_version: str | None,
               resume: bool) -> None:
        state = self.fed.rollout
        if state is not None:
            if state.rolled_back is not None:
                self.say(f"resuming the rollout of {chart} {version} after its rollback")
                self._write(replace(state, rolled_back=None), bump=False)
            elif state.ring < 0:
                self.say(f"starting the rollout of {chart} {state.from_version} -> {version} "
                         "recorded in federation.yaml (by `charts bump`)")
            else:
                self.say(f"resuming the rollout of {chart} {version} at ring {state.ring}")
            if state.ring < 0 and state.external is None:
                self._write(replace(self.state, external=self._external(None) or None),
                            bump=False)
            return
        assert from_version is not None
        plan = self.fed.rings
        assert plan is not None
        key = plan.versions_key or chart
        external = external_versions(self.fed, key, self.io.reported)
        started = RolloutState(
            chart=chart, from_version=from_version, to_version=version, ring=-1,
            started=utc_timestamp(self.io.clock.now()), versions_key=key,
            external=external or None)
        self.say(f"charts.{chart}.version: {from_version} -> {version}, with a rollout: block "
                 "(members keep the old version until their ring)")
        self.config = write_rollout(self.config, started, pin=(chart, version), bump=False)

    def _external(self, known: dict[str, str] | None) -> dict[str, str]:
        state = self.state
        return external_versions(self.fed, state.versions_key, self.io.reported, known)

    def _rings(self, chart: str) -> Rings:
        plan = self.fed.rings
        assert plan is not None
        state = self.fed.rollout
        canary = (state.canary if state is not None and state.canary is not None
                  else choose_canary(self.fed, plan, chart, self.io.healthy()))
        if plan.canary == SMALLEST and (state is None or state.canary is None):
            self.say(f"ring 1: {canary}, the smallest healthy routed member")
        return plan_rings(self.fed, plan, chart, canary)

    def _end(self, canary: str) -> RolloutOutcome:
        """Ring 2 done: end the rollout, unless a member this tool does not deploy still
        reports the old version (then the accepted set stays until it reports the new)."""
        state = self.state
        chart, version = state.chart, state.to_version
        external = self._external(dict(state.external or {}))
        if external != dict(state.external or {}):
            self._write(replace(state, external=external or None), bump=False)
        waiting = self.state.waiting_for
        if waiting:
            names = ", ".join(f"{n} keeps version {v}" for n, v in waiting.items())
            message = (f"every member this tool deploys runs {chart} {version}; not ours: "
                       f"{names}. The redirector keeps accepting {state.versions_key} "
                       f"{state.from_version} until they report {version} (so they stay in "
                       f"rotation): the next `federation-deploy rollout --resume` asks them "
                       "again and then ends the rollout")
            self.say(message)
            return RolloutOutcome(chart, version, "waiting", message)
        key = state.versions_key
        self._change(canary, self.fed.members[canary].weight,
                     lambda snap: write_rollout(snap, None),
                     done=f"rollout complete: {chart} {version} everywhere; accepted "
                          f"versions withdrawn ({key} must equal the prime's again)")
        return RolloutOutcome(chart, version, "complete",
                              f"rollout of {chart} {version} complete: every member runs it")

    # -- members -----------------------------------------------------------------------------

    def _at_new(self, name: str) -> Member:
        """The member with its releases of the chart at the new version (what it runs once
        upgraded): the deploy's machinery gets it, the version overridden."""
        state, member = self.state, self.fed.members[name]
        releases = tuple(replace(r, version=state.to_version)
                         if r.pin == state.chart and not r.overrides_pin else r
                         for r in member.releases)
        return replace(member, releases=releases)

    def _upgrade(self, name: str, ring: int) -> None:
        """Deploy and verify one member at the new version, then record it upgraded (its
        intent, `upgrading:`, written first: an abort after a crash in between rolls it
        back); a failure rolls it back (ring 1: the whole ring, see _ring_one_back) and
        stops."""
        if name in self.state.upgraded:
            return
        self._write(replace(self.state, upgrading=name), bump=False)
        state, member = self.state, self._at_new(name)
        releases = chart_releases(member, state.chart)
        self.say(f"ring {ring}: deploying {state.chart} {state.to_version} to {name} "
                 f"({', '.join(releases)})")
        try:
            self.io.deploy(self.fed, member, releases)
        except FederationDeployError as exc:
            # helm upgrade --atomic already put a failed release back: nothing to roll back
            self._failed(ring, name, f"its deploy failed: {exc}", rolled=False)
        try:
            self.io.verify(self.fed, member, state.versions_key, state.to_version)
        except VerificationError as exc:
            self._failed(ring, name, f"it failed its checks: {exc}", rolled=True)
        self._write(replace(self.state, upgraded=upgraded_with(self.state, [name]),
                            upgrading=None), bump=False)
        self.say(f"ring {ring}: {name} runs {state.chart} {state.to_version} and is healthy")

    def _failed(self, ring: int, name: str, why: str, *, rolled: bool) -> NoReturn:
        if ring == 1:
            self._ring_one_back(why, upgraded=rolled)
        elif rolled:
            self._roll_back(name)
        stamp = utc_timestamp(self.io.clock.now())
        self._write(replace(self.state, rolled_back=f"{stamp} ring {ring} at {name}: {why}",
                            upgrading=None), bump=False)
        raise VerificationError(self._stopped(f"ring {ring} failed at {name}: {why}; {name} "
                                              f"is back on {self.state.from_version}"))

    def _roll_back(self, name: str) -> None:
        state = self.state
        self.say(f"rolling back {name} to {state.chart} {state.from_version} (helm rollback)")
        member = self.fed.members[name]
        self.io.rollback(self.fed, member, chart_releases(member, state.chart))

    # -- ring 1 --------------------------------------------------------------------------------

    def _ring_one(self, canary: str, advance: bool = False) -> str | None:
        """Ring 1 to its end (None), or with advance one step of its ramp: what it does now
        while it is not over. Over only when its last share's hold passed its gate
        (`ring1_passed_at`)."""
        state = self.state
        if state.ring1_passed_at is not None:
            return None
        member = self.fed.members[canary]
        if state.ring >= 1 and canary in state.upgraded:
            ramp = member.ramp
            if ramp is not None and ramp.paused:
                self._ring_one_failed(canary, f"its ramp was found paused "
                                      f"({ramp.rolled_back or ramp.inconclusive})")
            if ramp is None and member.weight > 0:
                self._ring_one_failed(canary, f"its ramp was changed outside the rollout "
                                      f"(weight {member.weight:g}, no `ramp:` block) before "
                                      "its last share was judged")
        if state.ring < 1:
            weight = self.fed.members[canary].weight
            ringed = replace(state, ring=1, canary=canary, canary_weight=weight)
            self._change(canary, 0.0,
                         lambda snap: write_rollout(snap, ringed, weights={canary: 0.0}),
                         done=f"ring 1: {canary} at weight 0 for its deploy; the redirector "
                              f"accepts {state.versions_key} {state.from_version} and "
                              f"{state.to_version}")
        self._upgrade(canary, 1)
        plan_of = self.fed.rings
        assert plan_of is not None and self.state.canary_weight is not None
        member = self.fed.members[canary]
        plan = resolve_plan(self.fed, canary, plan_of.shares if member.ramp is None else None,
                            self.state.canary_weight, plan_of.hold)
        engine = RampEngine(self.fed, plan, ring_one_settings(self.settings, plan.hold_seconds),
                            self._ramp_io(), owner=OWNER)
        try:
            outcome = engine.advance() if advance else engine.run()
        except VerificationError as exc:
            self.config = read_snapshot(self.fed.config_dir)
            self._ring_one_failed(canary, f"its evidence failed: {exc}")
        self.config = engine.config
        if outcome.status != "complete":
            return f"ring 1 of {state.chart} {state.to_version}: {outcome.message}"
        weight = self.state.canary_weight
        passed = replace(self.state, ring1_passed_at=utc_timestamp(self.io.clock.now()))
        self._change(canary, weight,
                     lambda snap: write_rollout(snap, passed, weights={canary: weight}),
                     done=f"ring 1 passed: {canary}'s last share held and judged; at its "
                          f"weight {weight:g}, its `ramp:` block removed")
        return None

    def _ring_one_failed(self, canary: str, why: str) -> NoReturn:
        """Ring 1 rolled back (helm rollback when upgraded), the rollout paused, exit 1."""
        self._ring_one_back(why, upgraded=canary in self.state.upgraded
                            or self.state.upgrading == canary)
        stamp = utc_timestamp(self.io.clock.now())
        self._write(replace(self.state, rolled_back=f"{stamp} ring 1 at {canary}: {why}",
                            upgrading=None), bump=False)
        raise VerificationError(self._stopped(
            f"ring 1 failed at {canary}: {why}. {canary} is back on "
            f"{self.state.from_version} at weight {self.state.canary_weight:g}")) from None

    def _ring_one_back(self, why: str, *, upgraded: bool) -> None:
        """Ring 1 undone: helm rollback of the member (when its upgrade went through), its
        weight back, the accepted set withdrawn (ring 0), published and waited for."""
        state = self.state
        canary, weight = state.canary, state.canary_weight
        assert canary is not None and weight is not None
        self.say(f"ring 1 failed at {canary}: {why}")
        if upgraded:
            self._roll_back(canary)
        back = replace(state, ring=0, upgraded=tuple(n for n in state.upgraded if n != canary),
                       upgrading=None)
        self._change(canary, weight, lambda snap: write_rollout(snap, back,
                                                                weights={canary: weight}),
                     done=f"{canary} back at weight {weight:g}; accepted versions withdrawn")

    # -- config and publishing -----------------------------------------------------------------

    def _write(self, state: RolloutState, *, bump: bool) -> None:
        self.config = write_rollout(self.config, state, bump=bump)

    def _change(self, member: str, weight: float,
                write: Callable[[ConfigSnapshot], ConfigSnapshot], *, done: str) -> None:
        """One write that changes what the redirector is published (a weight, the accepted
        set), published and waited for like a ramp's one-off change."""
        engine = RampEngine.for_change(self.fed, member, weight, self.settings,
                                       self._ramp_io())
        engine.change(write, ramp_flag=False, done=done,
                      failed=f"the rollout's change of {member} was published")
        self.config = engine.config

    def _ramp_io(self) -> RampIO:
        return ramp_io(self.io.publish, self.io.clock, self.io.progress, self.io.on_step)

    def _stopped(self, why: str) -> str:
        chart, version = self.state.chart, self.state.to_version
        return (f"the rollout of {chart} {version} is paused: {why}. When fixed, "
                f"`federation-deploy rollout {chart} {version} --resume` retries it; "
                "`federation-deploy rollout --abort` ends it (every member back on "
                f"{self.state.from_version})")

    # -- abort ---------------------------------------------------------------------------------

    def abort(self) -> RolloutOutcome:
        """Every member recorded as upgrading or upgraded, and any other whose /versions
        reports the new version, rolled back; the pin back to `from`, ring 1's weight
        restored, the `rollout:` block removed: published and waited for."""
        state = self.fed.rollout
        if state is None:
            raise UsageError("no rollout in progress (no `rollout:` block in federation.yaml)")
        for name in reversed(self._to_roll_back(state)):
            self._roll_back(name)
        canary = state.canary or next(m.name for m in self.fed.routed if m.prime)
        weight = (state.canary_weight if state.canary is not None
                  and state.canary_weight is not None else self.fed.members[canary].weight)
        self._change(canary, weight,
                     lambda snap: write_rollout(snap, None, pin=(state.chart,
                                                                 state.from_version),
                                                weights={canary: weight}),
                     done=f"rollout of {state.chart} {state.to_version} aborted: every member "
                          f"on {state.from_version}, charts.{state.chart}.version back")
        return RolloutOutcome(state.chart, state.to_version, "aborted",
                              f"rollout of {state.chart} {state.to_version} aborted: every "
                              f"member back on {state.from_version}")

    def _to_roll_back(self, state: RolloutState) -> list[str]:
        """In upgrade order: `upgraded`, then `upgrading` (its deploy may have gone through
        before a crash: rolled back unless its /versions says it still runs `from`), then any
        other deployed member whose /versions reports `to`."""
        names = list(state.upgraded)
        for member in self.fed.members.values():
            if member.name in names or not member.deployable \
                    or not chart_releases(member, state.chart):
                continue
            versions = self.io.reported(member)
            got = versions.get(state.versions_key) if isinstance(versions, dict) else None
            if member.name == state.upgrading and got != state.from_version:
                self.say(f"{member.name} was being upgraded when the rollout stopped (it "
                         f"reports {got or 'nothing readable'}): rolled back too")
                names.append(member.name)
            elif got == state.to_version:
                self.say(f"{member.name} reports {state.versions_key} {got} but is not "
                         "recorded as upgraded: rolled back too")
                names.append(member.name)
        return names


def ring_one_settings(settings: RampSettings, hold: float) -> RampSettings:
    """Ring 1 holds each share at least rings.hold (the evidence gate's own default minimum
    is a third of the hold: `rings.hold` is what README promises), unless --min-hold says."""
    return settings if settings.min_hold is not None else replace(settings, min_hold=hold)


def run_rollout(fed: Federation, chart: str, version: str, settings: RampSettings,
                io: RolloutIO, *, resume: bool = False, advance: bool = False,
                allow_downgrade: bool = False) -> RolloutOutcome:
    """Run (or resume) a rollout to the end under the writer lock: a second rollout (or a
    ramp) on this machine is refused at once, naming the one that runs."""
    before_rollout(fed, f"rollout {chart} {version}{' --advance' if advance else ''}",
                   io.clock, io.progress)
    with writer_lock(fed.config_dir, f"rollout {chart} {version}"):
        # read again under the lock: what it refuses is checked on the file as it is now
        rollout = Rollout(load_federation(fed.config_dir), settings, io)
        return rollout.run(chart, version, resume=resume, advance=advance,
                           allow_downgrade=allow_downgrade)


def abort_rollout(fed: Federation, settings: RampSettings, io: RolloutIO) -> RolloutOutcome:
    """Abort wins: no writer lock (a running rollout sees the change and stops); read again
    and retried when a running rollout wrote in between."""
    for attempt in range(ABORT_ATTEMPTS):
        try:
            return Rollout(fed, settings, io).abort()
        except ConfigChanged:
            if attempt == ABORT_ATTEMPTS - 1:
                raise
            fed = load_federation(fed.config_dir)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# The command


@dataclass(frozen=True)
class RolloutRequest:
    """A `rollout` invocation as given (intervals in seconds)."""

    chart: str | None = None
    version: str | None = None
    publish: PublishRequest = PublishRequest()
    gate: str = "evidence"
    prometheus_url: str | None = None
    probe: str | None = None
    check_interval: float = 5.0
    heartbeat: float = 60.0
    timeout: str = "10m"
    dry_run: bool = False
    abort: bool = False
    resume: bool = False
    advance: bool = False
    allow_downgrade: bool = False


def rollout(fed: Federation, request: RolloutRequest, *, runner: Runner, progress: Progress,
            confirm: Callable[[str], None]) -> CommandResult:
    """The `rollout` command: the rings (--dry-run), an abort, or the rollout run or resumed."""
    if request.abort and (request.dry_run or request.resume or request.advance):
        raise UsageError("--abort cannot be combined with --dry-run, --resume or --advance")
    state = fed.rollout
    chart = request.chart or (state.chart if state is not None else None)
    version = request.version or (state.to_version if state is not None else None)
    publish = request.publish.for_federation(fed)
    healthy = (healthy_hosts(publish.redirector_url) if publish.redirector_url
               else RolloutIO.healthy)
    if request.dry_run:
        return dry_run(fed, chart, version, healthy=healthy,
                       allow_downgrade=request.allow_downgrade)
    publisher, settle = publisher_for(publish, runner, progress)
    settings = RampSettings(
        redirector_url=publish.redirector_url,
        prometheus_url=request.prometheus_url or fed.redirector.prometheus_url,
        gate=request.gate, probe_repo=request.probe or fed.redirector.ramp_probe,
        check_interval=request.check_interval, poll_interval=min(1.0, request.check_interval),
        settle_timeout=settle, heartbeat_interval=request.heartbeat)
    io = production_io(publisher, runner, request.timeout, progress)
    io.healthy = healthy
    if request.abort:
        if state is None:
            raise UsageError("no rollout in progress (no `rollout:` block in federation.yaml)")
        if (notice := freeze_notice(fed, f"the abort of the rollout of {state.chart}")):
            progress(notice)
        named = [*state.upgraded, *([state.upgrading] if state.upgrading else [])]
        confirm(f"Abort the rollout of {state.chart} {state.to_version}: roll back "
                f"{', '.join(named) or 'no member recorded'} (and any other member reporting "
                f"{state.to_version}) and publish to {publisher.target}?")
        return CommandResult(stdout=abort_rollout(fed, settings, io).message + "\n")
    if chart is None or version is None:
        if request.resume:
            return CommandResult(messages=("no rollout in progress: nothing to resume",))
        raise UsageError("rollout needs CHART VERSION (or --resume of the one in progress)")
    confirm(f"Roll {chart} {version} out through the rings, publishing to {publisher.target}?")
    try:
        outcome = run_rollout(fed, chart, version, settings, io, resume=request.resume,
                              advance=request.advance, allow_downgrade=request.allow_downgrade)
    except VerificationError as exc:
        return CommandResult(error=exc, summary=rollout_markdown(
            load_federation(fed.config_dir), chart, version, None, str(exc)))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM (signals.Terminated): say how to go on
        progress(interrupted_hint(chart, version))
        raise
    return CommandResult(stdout=outcome.message + "\n", summary=rollout_markdown(
        load_federation(fed.config_dir), chart, version, outcome.message))


def interrupted_hint(chart: str, version: str) -> str:
    return (f"the rollout of {chart} {version} was interrupted; federation.yaml records where "
            f"it stopped: `federation-deploy rollout {chart} {version} --resume` goes on, "
            "`federation-deploy rollout --abort` ends it (every member back on the old "
            "version)")
