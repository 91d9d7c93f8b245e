"""Command `rollout CHART VERSION`: a new chart version through the federation in rings.

The recipe (Rollout.run), every step a write of federation.yaml through the one writer:
  0. the bump: charts.CHART.version = VERSION and a `rollout:` block (from, to, ring) in one
     write; members not yet upgraded keep `from` meanwhile (config/rings.py), so a deploy of
     any member during the rollout changes nothing it should not;
  1. ring 0 (rings.staging): deploy the chart's releases at VERSION (the deploy's own stages
     for one member, its version overridden), verify /health and that /versions reports it;
  2. ring 1 (rings.canary, or the smallest healthy member): published at weight 0 with the
     accepted set {from, to} (the redirector keeps either version in rotation), deployed and
     verified, then ramped back to its weight through rings.shares with the ramp's engine and
     gates (its evidence: the new version against the members on the old one). A failure
     rolls it back: helm rollback of its releases, its weight restored, the accepted set
     withdrawn, the rollout paused (`rolled_back:`), exit 1 saying why;
  3. ring 2: every other member with the chart, in CD order, deployed and verified;
  4. the `rollout:` block removed and published: one version everywhere, the accepted set gone.
Abort wins (`--abort`): every upgraded member rolled back, the pin back to `from`, ring 1's
weight restored, published; a running rollout sees federation.yaml changed and stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NoReturn

from federation_deploy.commands.freeze import freeze_notice, refuse_when_frozen
from federation_deploy.commands.ramp import ABORT_ATTEMPTS, ramp_io
from federation_deploy.commands.result import CommandResult
from federation_deploy.commands.step_summary import rollout_markdown
from federation_deploy.config import (
    EXACT_VERSION,
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
from federation_deploy.progress import Progress, quiet
from federation_deploy.runner import Runner
from federation_deploy.traffic.formatting import aligned_lines
from federation_deploy.traffic.publish import PublishRequest, publisher_for
from federation_deploy.traffic.ramp.engine import (
    Publish,
    RampEngine,
    RampIO,
    RampSettings,
    StepHook,
)
from federation_deploy.traffic.ramp.plan import resolve_plan
from federation_deploy.traffic.ramp.state import utc_timestamp
from federation_deploy.traffic.rings import (
    Rings,
    chart_releases,
    choose_canary,
    plan_rings,
    rollout_text,
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

# (federation, member with the version to deploy, the chart's releases) -> deployed
DeployReleases = Callable[[Federation, Member, tuple[str, ...]], None]
# (federation, member, the chart's releases) -> `helm rollback` of each
RollBack = Callable[[Federation, Member, tuple[str, ...]], None]
# (federation, member, /versions key, version) -> VerificationError unless healthy on it
VerifyVersion = Callable[[Federation, Member, str, str], None]
HealthyHosts = Callable[[], frozenset[str] | None]


@dataclass
class RolloutIO:
    """What a rollout talks to; tests hand in the recorded helm fake and stand-ins."""

    publish: Publish
    deploy: DeployReleases
    rollback: RollBack
    verify: VerifyVersion
    clock: Clock = field(default_factory=Clock)
    progress: Progress = quiet
    on_step: StepHook | None = None  # ring 1's steps, when the redirector serves each
    healthy: HealthyHosts = lambda: None  # the redirector's healthy hosts (None: unknown)


@dataclass(frozen=True)
class RolloutOutcome:
    chart: str
    version: str
    status: str  # complete | aborted
    message: str


def before_rollout(fed: Federation, action: str, clock: Clock | None = None,
                   progress: Progress | None = None) -> None:
    """What every rollout (a run, a resume, --advance) passes before it changes anything: the
    one place for federation-wide refusals. No `rings:` is bad usage; a freeze in force
    refuses it (exit 2, commands/freeze.py). A rollout in a sandbox is allowed: its members
    are stand-ins. (An abort does not pass here: it must always be possible.)"""
    check_rings(fed)
    refuse_when_frozen(fed, action, clock, progress)


def check_rings(fed: Federation) -> None:
    if fed.rings is None:
        raise UsageError(f"{fed.path}: no `rings:` block: a rollout needs the rings (staging, "
                         "canary, shares, hold); see README, Rolling out a new version")


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

    def run(self, chart: str, version: str, *, resume: bool = False,
            advance: bool = False) -> RolloutOutcome:
        """The recipe to the end; advance (a scheduled job): rings 0 and 2 as always, ring 1
        one step of its ramp per call (returning `holding` until its last step passed)."""
        self._start(chart, version, resume)
        rings = self._rings()
        self.say(f"rollout of {chart} {self.state.from_version} -> {version}: ring 0 "
                 f"{', '.join(rings.staging) or '(none)'}; ring 1 {rings.canary}; ring 2 "
                 f"{', '.join(rings.rest) or '(none)'}")
        try:
            if self.state.ring <= 0:
                self._write(replace(self.state, ring=0), bump=False)
                for name in rings.staging:
                    self._upgrade(name, 0)
            if self.state.ring <= 1:
                waiting = self._ring_one(rings.canary, advance)
                if waiting is not None:
                    return RolloutOutcome(chart, version, "holding", waiting)
            self._write(replace(self.state, ring=2), bump=False)
            for name in rings.rest:
                self._upgrade(name, 2)
        except ConfigChanged as exc:
            raise WeightsConflict(f"the rollout of {chart} {version} stops (federation.yaml "
                                  f"changed under it: an abort wins): {exc}") from None
        key = self.state.versions_key
        self._change(rings.canary, self.fed.members[rings.canary].weight,
                     lambda snap: write_rollout(snap, None),
                     done=f"rollout complete: {chart} {version} everywhere; accepted "
                          f"versions withdrawn ({key} must equal the prime's again)")
        return RolloutOutcome(chart, version, "complete",
                              f"rollout of {chart} {version} complete: every member runs it")

    def _start(self, chart: str, version: str, resume: bool) -> None:
        state = self.fed.rollout
        if state is not None and (state.chart, state.to_version) != (chart, version):
            raise UsageError(
                f"a rollout of {state.chart} {state.to_version} is in progress (ring "
                f"{state.ring}, since {state.started}): one rollout at a time. Resume it "
                f"(`federation-deploy rollout {state.chart} {state.to_version} --resume`) or "
                "abort it (`federation-deploy rollout --abort`) first")
        if state is not None:
            if state.rolled_back is not None:
                if not resume:
                    raise VerificationError(
                        f"the rollout of {chart} {version} is paused since its rollback "
                        f"({state.rolled_back}): `federation-deploy rollout {chart} {version} "
                        "--resume` retries it, `--abort` ends it")
                self.say(f"resuming the rollout of {chart} {version} after its rollback")
                self._write(replace(state, rolled_back=None), bump=False)
            elif state.ring < 0:
                self.say(f"starting the rollout of {chart} {state.from_version} -> {version} "
                         "recorded in federation.yaml (by `charts bump`)")
            else:
                self.say(f"resuming the rollout of {chart} {version} at ring {state.ring}")
            return
        pin = self.fed.chart(chart)
        if not EXACT_VERSION.match(version):
            raise UsageError(f"{version!r} is not an exact chart version (like 1.2.3)")
        if pin.version == version:
            raise UsageError(f"charts.{chart}.version is {version} already and no rollout is "
                             "in progress: nothing to roll out")
        plan = self.fed.rings
        assert plan is not None
        started = RolloutState(
            chart=chart, from_version=pin.version, to_version=version, ring=-1,
            started=utc_timestamp(self.io.clock.now()),
            versions_key=plan.versions_key or chart)
        self.say(f"charts.{chart}.version: {pin.version} -> {version}, with a rollout: block "
                 "(members keep the old version until their ring)")
        self.config = write_rollout(self.config, started, pin=(chart, version), bump=False)

    def _rings(self) -> Rings:
        plan = self.fed.rings
        assert plan is not None
        canary = self.state.canary or choose_canary(self.fed, plan, self.state.chart,
                                                    self.io.healthy())
        if plan.canary == SMALLEST and self.state.canary is None:
            self.say(f"ring 1: {canary}, the smallest healthy routed member")
        return plan_rings(self.fed, plan, self.state.chart, canary)

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
        """Deploy and verify one member at the new version, then record it upgraded; a
        failure rolls it back (ring 1: the whole ring, see _ring_one_back) and stops."""
        if name in self.state.upgraded:
            return
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
        self._write(replace(self.state, upgraded=upgraded_with(self.state, [name])),
                    bump=False)
        self.say(f"ring {ring}: {name} runs {state.chart} {state.to_version} and is healthy")

    def _failed(self, ring: int, name: str, why: str, *, rolled: bool) -> NoReturn:
        if ring == 1:
            self._ring_one_back(why, upgraded=rolled)
        elif rolled:
            self._roll_back(name)
        stamp = utc_timestamp(self.io.clock.now())
        self._write(replace(self.state, rolled_back=f"{stamp} ring {ring} at {name}: {why}"),
                    bump=False)
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
        while it is not over."""
        state = self.state
        member = self.fed.members[canary]
        if (state.ring == 1 and canary in state.upgraded and member.ramp is None
                and member.weight == state.canary_weight):
            return None  # its ramp completed before an interruption: ring 1 is over
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
        engine = RampEngine(self.fed, plan, self.settings, self._ramp_io())
        try:
            outcome = engine.advance() if advance else engine.run()
        except VerificationError as exc:
            self.config = read_snapshot(self.fed.config_dir)
            self._ring_one_back(f"its evidence failed: {exc}", upgraded=True)
            stamp = utc_timestamp(self.io.clock.now())
            self._write(replace(self.state, rolled_back=f"{stamp} ring 1 at {canary}: {exc}"),
                        bump=False)
            raise VerificationError(self._stopped(
                f"ring 1 failed at {canary}: {exc}. {canary} is back on "
                f"{self.state.from_version} at weight {self.state.canary_weight:g}")) from None
        self.config = engine.config
        if outcome.status == "complete":
            return None
        return f"ring 1 of {state.chart} {state.to_version}: {outcome.message}"

    def _ring_one_back(self, why: str, *, upgraded: bool) -> None:
        """Ring 1 undone: helm rollback of the member (when its upgrade went through), its
        weight back, the accepted set withdrawn (ring 0), published and waited for."""
        state = self.state
        canary, weight = state.canary, state.canary_weight
        assert canary is not None and weight is not None
        self.say(f"ring 1 failed at {canary}: {why}")
        if upgraded:
            self._roll_back(canary)
        back = replace(state, ring=0, upgraded=tuple(n for n in state.upgraded if n != canary))
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
        """Every upgraded member rolled back, the pin back to `from`, ring 1's weight
        restored, the `rollout:` block removed: published and waited for."""
        state = self.fed.rollout
        if state is None:
            raise UsageError("no rollout in progress (no `rollout:` block in federation.yaml)")
        for name in reversed(state.upgraded):
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


def run_rollout(fed: Federation, chart: str, version: str, settings: RampSettings,
                io: RolloutIO, *, resume: bool = False, advance: bool = False
                ) -> RolloutOutcome:
    """Run (or resume) a rollout to the end under the writer lock: a second rollout (or a
    ramp) on this machine is refused at once, naming the one that runs."""
    before_rollout(fed, f"rollout {chart} {version}{' --advance' if advance else ''}",
                   io.clock, io.progress)
    with writer_lock(fed.config_dir, f"rollout {chart} {version}"):
        return Rollout(fed, settings, io).run(chart, version, resume=resume, advance=advance)


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


def rollout(fed: Federation, request: RolloutRequest, *, runner: Runner, progress: Progress,
            confirm: Callable[[str], None]) -> CommandResult:
    """The `rollout` command: the rings (--dry-run), an abort, or the rollout run or resumed."""
    if request.abort and (request.dry_run or request.resume or request.advance):
        raise UsageError("--abort cannot be combined with --dry-run, --resume or --advance")
    state = fed.rollout
    chart = request.chart or (state.chart if state is not None else None)
    version = request.version or (state.to_version if state is not None else None)
    if request.dry_run:
        return dry_run(fed, chart, version)
    publish = request.publish.for_federation(fed)
    publisher, settle = publisher_for(publish, runner, progress)
    settings = RampSettings(
        redirector_url=publish.redirector_url,
        prometheus_url=request.prometheus_url or fed.redirector.prometheus_url,
        gate=request.gate, probe_repo=request.probe or fed.redirector.ramp_probe,
        check_interval=request.check_interval, poll_interval=min(1.0, request.check_interval),
        settle_timeout=settle, heartbeat_interval=request.heartbeat)
    io = production_io(publisher, runner, request.timeout, progress)
    if publish.redirector_url:
        io.healthy = healthy_hosts(publish.redirector_url)
    if request.abort:
        if state is None:
            raise UsageError("no rollout in progress (no `rollout:` block in federation.yaml)")
        if (notice := freeze_notice(fed, f"the abort of the rollout of {state.chart}")):
            progress(notice)
        confirm(f"Abort the rollout of {state.chart} {state.to_version}: roll back "
                f"{', '.join(state.upgraded) or 'no member'} and publish to {publisher.target}?")
        return CommandResult(stdout=abort_rollout(fed, settings, io).message + "\n")
    if chart is None or version is None:
        if request.resume:
            return CommandResult(messages=("no rollout in progress: nothing to resume",))
        raise UsageError("rollout needs CHART VERSION (or --resume of the one in progress)")
    confirm(f"Roll {chart} {version} out through the rings, publishing to {publisher.target}?")
    try:
        outcome = run_rollout(fed, chart, version, settings, io, resume=request.resume,
                              advance=request.advance)
    except VerificationError as exc:
        return CommandResult(error=exc, summary=rollout_markdown(
            load_federation(fed.config_dir), chart, version, None, str(exc)))
    return CommandResult(stdout=outcome.message + "\n", summary=rollout_markdown(
        load_federation(fed.config_dir), chart, version, outcome.message))


def dry_run(fed: Federation, chart: str | None, version: str | None) -> CommandResult:
    """The rings and who runs what, changing nothing."""
    check_rings(fed)
    plan = fed.rings
    assert plan is not None
    text = rollout_text(fed)
    if text is not None:
        return CommandResult(stdout=text, messages=("a rollout is in progress: --resume goes "
                                                    "on with it; nothing changed (--dry-run)",))
    if chart is None or version is None:
        raise UsageError("rollout --dry-run needs CHART VERSION (no rollout in progress)")
    pin = fed.chart(chart)
    canary = choose_canary(fed, plan, chart, None)
    rings = plan_rings(fed, plan, chart, canary)
    rows = [["ring", "members", "what happens"],
            ["0", ", ".join(rings.staging) or "-", f"deployed {version}, verified"],
            ["1", canary, f"weight 0, deployed, then {', '.join(f'{s:g}%' for s in plan.shares)}"
                          f" of launches (hold {plan.hold}), then its weight"],
            ["2", ", ".join(rings.rest) or "-", "deployed in CD order, verified"]]
    return CommandResult(stdout="\n".join(aligned_lines(rows)) + "\n", messages=(
        f"charts.{chart}.version {pin.version} -> {version}; nothing changed (--dry-run)",))


def production_io(publisher: Publish, runner: Runner, timeout: str,
                  progress: Progress) -> RolloutIO:
    """The deploy's stages for the chart's releases, helm rollback, verify with the member's
    /health and /versions (the real cluster, or a sandbox's stand-ins)."""
    from federation_deploy.commands.deploy import deploy_member
    from federation_deploy.health.probe import verify_member

    def deploy(fed: Federation, member: Member, releases: tuple[str, ...]) -> None:
        deploy_member(fed, member, runner, releases=releases,
                      stages=("auth", "releases", "rollout"), timeout=timeout,
                      progress=progress)

    def rollback(fed: Federation, member: Member, releases: tuple[str, ...]) -> None:
        if fed.sandbox is not None:
            from federation_deploy.commands.deploy_sandbox import sandbox_versions

            sandbox_versions(fed, member, releases, rolled_back=True, say=progress)
            return
        helm_rollback(fed, member, releases, runner, timeout)

    def verify(fed: Federation, member: Member, key: str, version: str) -> None:
        result = verify_member(member, pod_headroom=fed.redirector.pod_headroom,
                               progress=progress, sleep=time.sleep)
        check_version(member, result.versions, key, version)

    return RolloutIO(publish=publisher, deploy=deploy, rollback=rollback, verify=verify,
                     progress=progress)


def healthy_hosts(redirector_url: str) -> HealthyHosts:
    """The redirector's healthy hosts (its /active_hosts), for `canary: smallest`; None when
    it cannot be asked (then config alone decides, and the ring's checks catch the rest)."""
    from federation_deploy.traffic.live import LiveError, fetch_active_hosts

    def healthy() -> frozenset[str] | None:
        try:
            return frozenset(fetch_active_hosts(redirector_url))
        except LiveError:
            return None

    return healthy


def check_version(member: Member, versions: object, key: str, version: str) -> None:
    got = versions.get(key) if isinstance(versions, dict) else None
    if got != version:
        raise VerificationError(f"{member.name} reports {key} {got!r} at {member.versions_url}, "
                                f"not {version}", stage="verify")


def helm_rollback(fed: Federation, member: Member, releases: tuple[str, ...], runner: Runner,
                  timeout: str, *, helm_executable: str | None = None,
                  tools: object | None = None) -> None:
    """`helm rollback` of the member's releases with its own credentials."""
    from federation_deploy.actions.helm import Helm
    from federation_deploy.actions.kube_auth import (
        ClusterTools,
        cluster_access,
        find_cluster_tools,
    )

    helm = Helm(runner, executable=helm_executable, timeout=timeout)
    found = tools if isinstance(tools, ClusterTools) else find_cluster_tools(member)
    with cluster_access(fed, member, runner, found) as access:
        helm.use_cluster(access)
        try:
            for name in releases:
                helm.rollback(member.release(name), None, timeout=timeout)
        finally:
            helm.use_cluster(None)
            helm.close()
