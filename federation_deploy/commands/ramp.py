"""Command `ramp`: run, advance or abort a member's traffic ramp; its plan as a table."""

from __future__ import annotations

import contextlib
import math
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from federation_deploy.actions.notify import Event, Notifier
from federation_deploy.commands.announce import announced, with_notify_warnings
from federation_deploy.commands.freeze import freeze_notice, refuse_when_frozen
from federation_deploy.commands.result import CommandResult
from federation_deploy.commands.step_summary import ramp_markdown
from federation_deploy.config import FEDERATION_FILE, Federation, load_federation
from federation_deploy.durations import format_duration
from federation_deploy.errors import (
    FederationDeployError,
    UsageError,
    VerificationError,
    WeightsConflict,
)
from federation_deploy.runner import Runner
from federation_deploy.traffic.formatting import aligned_lines, paused_text
from federation_deploy.traffic.launch_metrics import query_launches
from federation_deploy.traffic.live import LiveError, fetch_pool
from federation_deploy.traffic.publish import Publisher, publisher_for
from federation_deploy.traffic.publish import PublishRequest as PublishRequest  # for the CLI
from federation_deploy.traffic.ramp.engine import (
    Clock,
    Progress,
    Publish,
    RampEngine,
    RampIO,
    RampOutcome,
    RampSettings,
    StepHook,
)
from federation_deploy.traffic.ramp.evidence import (
    hold_needed,
    launches_needed,
)
from federation_deploy.traffic.ramp.gates import LaunchReader
from federation_deploy.traffic.ramp.plan import (
    RampPlan,
    RampStep,
    check_rampable,
    parse_steps,
    resolve_plan,
)
from federation_deploy.traffic.ramp.probes import (
    DEFAULT_PREFLIGHT_CONCURRENCY,
    Spawn,
    in_thread,
)
from federation_deploy.traffic.ramp.publishing import NOT_PUBLISHED
from federation_deploy.traffic.ramp.watch import (
    check_gate_settings,
    make_gate,
    preflight_pool,
)
from federation_deploy.traffic.rings import rollout_owns
from federation_deploy.traffic.weights import ConfigChanged, writer_holding, writer_lock

# the pre-flight's duration in the plan, when the federation's launch time is unknown
ASSUMED_LAUNCH_SECONDS = 60.0

# An abort re-reads federation.yaml and tries again when a ramp wrote it in between: it wins.
ABORT_ATTEMPTS = 5

# Called with the plan before anything is written or published; raises to refuse (the CLI
# asks for confirmation there).
Confirm = Callable[[RampPlan], None]


@dataclass(frozen=True)
class RampRequest:
    """A `ramp` invocation as the user gave it: what to change (steps as written, hold as
    normalised duration text, the weight at 100%), what to do (run, dry_run, advance, abort),
    where to publish and what to watch (seconds for the intervals)."""

    steps: str | None = None
    hold: str | None = None
    to_weight: float | None = None
    publish: PublishRequest = PublishRequest()
    prometheus_url: str | None = None  # default: redirector.prometheus_url in config
    gate: str = "evidence"  # evidence | time | fixed | argo (traffic/ramp/gates.py)
    probe: str | None = None  # default: redirector.ramp_probe in config
    probe_interval: float = 60.0
    min_hold: float | None = None
    max_hold: float | None = None
    warm: int = 0
    # pool repositories launched in the pre-flight (0: none); default: redirector.ramp_preflight
    # in config, else 20 when the ramp knows the redirector
    preflight: int | None = None
    launch_rate: float | None = None  # --dry-run: the federation's launches per second
    max_error_rate: float = 0.05
    check_interval: float = 5.0
    heartbeat: float = 60.0
    dry_run: bool = False
    advance: bool = False
    abort: bool = False


def ramp(fed: Federation, member: str, request: RampRequest, *, runner: Runner,
         progress: Progress, confirm: Callable[[str], None],
         decisions: list[dict[str, object]] | None = None) -> CommandResult:
    """The `ramp` command: the plan (--dry-run), an abort, one step (--advance) or the whole
    ramp. stdout: the plan table or the outcome; the CI summary of what happened, with each
    decision of this run (decisions: the caller's list, filled as they are taken, so that an
    interrupted ramp's summary has them too). A rollback is reported as a
    VerificationError (exit 1) after its summary."""
    decisions = [] if decisions is None else decisions
    if request.abort and (request.advance or request.dry_run):
        raise UsageError("--abort cannot be combined with --advance or --dry-run")
    steps = parse_steps(request.steps) if request.steps is not None else None
    if request.dry_run:
        return dry_run(fed, member, steps, request)
    if (owned := rollout_owns(fed, member)) is not None:
        # ring 1 of a rollout: a ramp here would take it to full weight or to 0 without the
        # helm rollback that ring 1 needs (and the scheduled --advance must skip it)
        if request.advance:
            return CommandResult(stdout=f"skipped: {owned}\n")
        raise UsageError(f"`ramp {member}` refused: {owned}")
    publish = request.publish.for_federation(fed)  # a sandbox's own redirector by default
    publisher, settle = publisher_for(publish, runner, progress)
    settings = RampSettings(
        redirector_url=publish.redirector_url,
        prometheus_url=request.prometheus_url or fed.redirector.prometheus_url,
        gate=request.gate,
        probe_repo=request.probe or fed.redirector.ramp_probe,
        probe_interval=request.probe_interval,
        min_hold=request.min_hold,
        max_hold=request.max_hold,
        warm=request.warm,
        preflight=preflight_count(fed, request, publish.redirector_url),
        max_error_rate=request.max_error_rate,
        check_interval=request.check_interval,
        # /active_hosts is polled as often as the member is checked, at least once a second
        poll_interval=min(1.0, request.check_interval),
        settle_timeout=settle,
        heartbeat_interval=request.heartbeat,
    )
    target = publisher.target
    if not request.abort:
        # a freeze first (run_ramp checks again, and says an expired one), then the settings
        refuse_when_frozen(fed, f"ramp {member}{' --advance' if request.advance else ''}")
        check_gate_settings(settings)  # before anything is asked, written or published
    notifier = Notifier.for_federation(fed)
    if request.abort:
        if (notice := freeze_notice(fed, f"the abort of the ramp of {member}")) is not None:
            progress(notice)
        confirm(f"Abort the ramp of {member}: weight 0 now, published to {target}?")
        outcome = abort_ramp(fed, member, publisher, settings=settings, progress=progress)
        return announced(fed, Event("weights", "abort", outcome.message, member),
                         _outcome_result(fed, member, outcome), notifier)
    unsent: list[str] = []

    def on_step(step: RampStep) -> None:
        # every step the redirector serves is a weight change: announced as it happens
        text = (f"ramp of {member}: {'full weight' if step.final else f'{step.percent:g}%'}, "
                f"weight {step.weight:g} ({step.share:.2f}% of launches)")
        unsent.extend(notifier.send(Event("weights", "ramp-step", text, member)))

    def confirm_plan(plan: RampPlan) -> None:
        state = fed.members[member].ramp
        shown = ", ".join(f"{p:g}%" for p in plan.percents)
        verb = "Advance the ramp of" if request.advance else "Ramp"
        where = "" if state is None else f", in progress at step {state.step + 1}"
        confirm(f"{verb} {member} ({shown}; hold {format_duration(plan.hold_seconds)}"
                f"{where}), publishing to {target}?")

    try:
        outcome = run_ramp(fed, member, publisher, steps=steps, to_weight=request.to_weight,
                           hold=request.hold, settings=settings, progress=progress,
                           confirm=confirm_plan, advance=request.advance, on_step=on_step,
                           on_decision=decisions.append)
    except VerificationError as exc:
        failed = CommandResult(error=exc, summary=ramp_markdown(
            load_federation(fed.config_dir), member, None, str(exc), decisions))
        if "rolled back" not in str(exc):  # paused, inconclusive: no weight changed
            return with_notify_warnings(failed, tuple(unsent))
        rollback = Event("weights", "rollback", str(exc), member, ok=False)
        return with_notify_warnings(failed, (*unsent, *notifier.send(rollback)))
    return with_notify_warnings(_outcome_result(fed, member, outcome, decisions),
                                tuple(unsent))


def preflight_count(fed: Federation, request: RampRequest,
                    redirector_url: str | None) -> int | None:
    """The pre-flight's repositories: --preflight (refused later without a redirector), else
    config's redirector.ramp_preflight when the ramp knows a redirector, else None (the
    default: 20 with a redirector, none without; the ramp says so)."""
    if request.preflight is not None:
        return request.preflight
    configured = fed.redirector.ramp_preflight
    return configured if configured is not None and redirector_url else None


def _outcome_result(fed: Federation, member: str, outcome: RampOutcome,
                    decisions: list[dict[str, object]] | None = None) -> CommandResult:
    return CommandResult(stdout=outcome.message + "\n", summary=ramp_markdown(
        load_federation(fed.config_dir), member, outcome, decisions=decisions or ()))


def interrupted_summary(config_dir: Path, member: str, said: list[str],
                        decisions: list[dict[str, object]]) -> CommandResult:
    """The step summary of an interrupted ramp: where it stopped and how to resume (said:
    interrupted()'s lines), each decision it took, the weights."""
    with contextlib.suppress(FederationDeployError):
        return CommandResult(summary=ramp_markdown(
            load_federation(config_dir), member, None, decisions=decisions,
            interrupted=said))
    return CommandResult()


def dry_run(fed: Federation, member: str, steps: tuple[float, ...] | None,
            request: RampRequest) -> CommandResult:
    """The plan as a table, changing nothing; notes and where a ramp in progress is."""
    plan = resolve_plan(fed, member, steps, request.to_weight, request.hold)
    state = fed.members[member].ramp
    messages = [f"note: {note}" for note in plan.notes]
    if state is not None and state.paused:
        messages.append(f"the ramp of {member} at step {state.step + 1} is "
                        f"{paused_text(member, state.rolled_back, state.inconclusive)}")
    elif state is not None:
        messages.append(f"a ramp of {member} is in progress at step {state.step + 1} "
                        f"since {state.started}")
    evidence = None
    prometheus_url = request.prometheus_url or fed.redirector.prometheus_url
    probe = request.probe or fed.redirector.ramp_probe
    redirector_url = request.publish.for_federation(fed).redirector_url
    # the real run's checks, in the same words: refused settings, and the pre-flight's pool
    settings = RampSettings(redirector_url=redirector_url, prometheus_url=prometheus_url,
                            gate=request.gate, probe_repo=probe, warm=request.warm,
                            preflight=preflight_count(fed, request, redirector_url),
                            probe_interval=request.probe_interval, min_hold=request.min_hold,
                            max_hold=request.max_hold, max_error_rate=request.max_error_rate)
    refused = None
    try:
        # the gate and its risks, as the ramp says them
        gate = make_gate(settings, RampIO(publish=lambda _fed: None), fed.members[member],
                         plan.hold_seconds)
        messages.append(f"gate: {gate.describe()}")
    except UsageError as exc:
        refused = str(exc)
        messages.append(f"note: this ramp would be refused (exit 2): {refused}")
    if request.gate == "evidence":
        evidence = plan_evidence(
            plan, prometheus_url=prometheus_url, launch_rate=request.launch_rate,
            probe=probe,
            probe_interval=request.probe_interval, min_hold=request.min_hold,
            max_hold=request.max_hold)
    if evidence is not None and evidence.note:
        messages.append(f"note: {evidence.note}")
    repos: list[str] = []
    if evidence is not None and refused is None and (state is None or state.step < 0):
        repos, why = preflight_pool(settings, fetch_pool, member, plan.to_weight)
        if why is not None:
            messages.append(why if why.startswith("note: ") else f"note: {why}")
    if evidence is not None and repos:
        messages.append(f"note: before step 1, a pre-flight at 0% (nobody routed to {member}):"
                        f" its {len(repos)} most launched pool repositories launched on its "
                        f"BinderHub, {DEFAULT_PREFLIGHT_CONCURRENCY} at a time, until about "
                        f"{evidence.needed} launches show it as good as the rest: "
                        f"{evidence.preflight_time()}; at most "
                        f"{format_duration(evidence.max_hold)}, then it pauses")
    elif (evidence is not None and evidence.probe_interval
          and (state is None or state.step < 0)):
        messages.append(f"note: with probes, the ramp first holds at 0% until they show "
                        f"{member} as good as the rest ({evidence.hold(0.0)} at one probe "
                        f"every {format_duration(evidence.probe_interval)})")
    return CommandResult(
        stdout=plan_table(plan, state.step if state is not None else None, evidence),
        messages=tuple(messages))


def interrupted(config_dir: Path, member: str, resume_flags: list[str],
                abort_flags: list[str], rerun: list[str],
                interrupt: BaseException | None = None) -> list[str]:
    """What an interrupted ramp says: where config left it, whether that is published (the
    engine publishes a write the interrupt came after; interrupt carries NOT_PUBLISHED when
    that failed), and the exact commands that resume it and abort it (resume_flags and
    abort_flags carry this run's publish target and redirector; rerun is this run's own
    command line)."""
    state = None
    with contextlib.suppress(FederationDeployError):
        state = load_federation(config_dir).members[member].ramp
    base = ["federation-deploy"]
    if config_dir != Path("config"):
        base += ["--config-dir", str(config_dir)]
    base += ["ramp", member]
    if state is None:
        # nothing written yet (or the ramp already complete): the same command starts it
        return [f"interrupted: config has no ramp of {member} in progress; run the same "
                "command again to start it:",
                "  " + shlex.join(["federation-deploy", *rerun])]
    where = ("before its first step" if state.step < 0
             else f"at step {state.step + 1}/{len(state.steps)} ({state.current_share:g}%)")
    published = ("those weights were published"
                 if NOT_PUBLISHED not in getattr(interrupt, "__notes__", ())
                 else "those weights are not published yet (the resume publishes them)")
    return [
        f"interrupted: {config_dir / FEDERATION_FILE} keeps the ramp of {member} "
        f"{where}, and {published}",
        "  resume: " + shlex.join([*base, *resume_flags, "--yes"]),
        "  abort:  " + shlex.join([*base, "--abort", *abort_flags, "--yes"]),
    ]


def run_ramp(
    fed: Federation,
    member: str,
    publisher: Publish,
    *,
    steps: tuple[float, ...] | None = None,
    to_weight: float | None = None,
    hold: str | None = None,
    settings: RampSettings | None = None,
    clock: Clock | None = None,
    progress: Progress | None = None,
    on_step: StepHook | None = None,
    confirm: Confirm | None = None,
    advance: bool = False,
    probe_spawn: Spawn | None = None,
    on_decision: Callable[[dict[str, object]], None] | None = None,
) -> RampOutcome:
    """Run (or resume) the ramp of member to the end, every step held and checked; or with
    advance, one step for a scheduled job: check the current step, and move to the next one
    when its hold is over (or start the ramp), returning at once.

    on_step is called when the redirector reports a step's weights, before its hold;
    probe_spawn runs a probe's launch in the background (default: a thread); on_decision
    hears each decision that ends a hold, with its evidence (the step summary's log).
    Raises VerificationError after a rollback, UsageError on refused input, WeightsConflict
    when another ramp runs on this machine (the writer lock) or someone else changed the
    weights under this one (it then stops without publishing).
    """
    # a freeze stops a ramp before anything (the scheduled --advance too; abort goes ahead)
    refuse_when_frozen(fed, f"ramp {member}{' --advance' if advance else ''}", clock, progress)
    # the lock first: a second ramp on this machine is told that one runs, whatever it asks
    settings = settings or RampSettings()
    check_gate_settings(settings)  # refused (exit 2) before anything is written
    with writer_lock(fed.config_dir, f"ramp {member}{' --advance' if advance else ''}",
                     member):
        plan = resolve_plan(fed, member, steps, to_weight, hold)
        if confirm is not None:
            confirm(plan)
        io = ramp_io(publisher, clock, progress, on_step, probe_spawn, on_decision)
        try:
            engine = RampEngine(fed, plan, settings, io)
        except ConfigChanged as exc:
            # an abort (or a drain, an edit) while this ramp was starting: it wins
            raise WeightsConflict(
                f"the ramp of {member} stops before writing or publishing anything: {exc} "
                "(an abort while a ramp starts wins)") from None
        return engine.advance() if advance else engine.run()


def advance_ramp(
    fed: Federation,
    member: str,
    publisher: Publish,
    *,
    steps: tuple[float, ...] | None = None,
    to_weight: float | None = None,
    hold: str | None = None,
    settings: RampSettings | None = None,
    clock: Clock | None = None,
    progress: Progress | None = None,
    on_step: StepHook | None = None,
) -> RampOutcome:
    """run_ramp(..., advance=True): one step of the ramp, for a scheduled job."""
    return run_ramp(fed, member, publisher, steps=steps, to_weight=to_weight, hold=hold,
                    settings=settings, clock=clock, progress=progress, on_step=on_step,
                    advance=True)


def _abort_starting(fed: Federation, member: str, publisher: Publish, holder: str,
                    settings: RampSettings | None, clock: Clock | None,
                    progress: Progress | None) -> RampOutcome:
    """The abort of a ramp that is starting: weight 0, published, as any abort; the write
    (a new generation) is what the starting ramp's compare-and-swap then finds, so it stops
    before it writes or publishes anything."""
    say = progress or (lambda _message: None)
    say(f"a ramp of {member} is starting ({holder}) and has not written its state yet: "
        "aborting it")
    io = ramp_io(publisher, clock, progress, None)
    for attempt in range(ABORT_ATTEMPTS):
        try:
            return RampEngine.for_abort(fed, member, settings or RampSettings(), io).abort()
        except ConfigChanged:
            if attempt == ABORT_ATTEMPTS - 1:
                raise
            fed = load_federation(fed.config_dir)  # it wrote meanwhile: abort what it wrote
    raise AssertionError("unreachable")


def abort_ramp(
    fed: Federation,
    member: str,
    publisher: Publish,
    *,
    settings: RampSettings | None = None,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> RampOutcome:
    """Weight 0 at once, the `ramp:` block removed, published. Only for a ramp in progress:
    an abort by mistake must not take a member in full service out of rotation."""
    checked = check_rampable(fed, member)
    starting = writer_holding(fed.config_dir) if checked.ramp is None else None
    if starting is not None and starting[1] == member:
        # a ramp of member took the writer lock and has not written its `ramp:` block yet
        # (planning, asking for confirmation): the abort wins all the same (issue 29)
        return _abort_starting(fed, member, publisher, starting[0], settings, clock, progress)
    if checked.ramp is None:
        raise UsageError(
            f"no ramp of {member} in progress (no `ramp:` block in config); to take it out of "
            f"rotation: `federation-deploy traffic drain {member} --reason TEXT`"
        )
    if checked.drained is not None:
        # an abort writes weight 0 without the ramp, and the drain would then give back the
        # weight of a step that no longer exists: one change at a time
        raise UsageError(
            f"{member} is drained (since {checked.drained.since}): its ramp is paused. Restore "
            f"it first (`federation-deploy traffic restore {member}`), then abort the ramp"
        )
    io = ramp_io(publisher, clock, progress, None)
    for attempt in range(ABORT_ATTEMPTS):
        try:
            return RampEngine.for_abort(fed, member, settings or RampSettings(), io).abort()
        except ConfigChanged:
            # a running ramp wrote federation.yaml between our read and our write: read it
            # again (the ramp then sees our change and stops)
            if attempt == ABORT_ATTEMPTS - 1:
                raise
            fed = load_federation(fed.config_dir)
            if check_rampable(fed, member).ramp is None:
                raise UsageError(f"no ramp of {member} in progress any more (someone else "
                                 "ended it while this abort ran)") from None
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class PlanEvidence:
    """What the evidence gate needs of each step: launches, and the hold they take."""

    needed: int  # launches a step of a member as good as the rest needs, on average
    launch_rate: float | None  # the federation's launches per second (None: unknown)
    probe_interval: float | None  # probes every this many seconds (None: no probes)
    min_hold: float
    max_hold: float
    note: str | None = None
    launch_seconds: float | None = None  # the others' median launch time (None: unknown)

    def preflight_time(self) -> str:
        """How long the pre-flight of a member as good as the rest takes: its launches,
        DEFAULT_PREFLIGHT_CONCURRENCY at a time, each as long as the federation's median."""
        seconds = self.launch_seconds or ASSUMED_LAUNCH_SECONDS
        batches = math.ceil(self.needed / DEFAULT_PREFLIGHT_CONCURRENCY)
        shown = f"~{format_duration(math.ceil(batches * seconds / 60) * 60)}"
        return (shown + (f" at the federation's median launch time of {seconds:.0f}s"
                         if self.launch_seconds else
                         f" at {seconds:.0f}s a launch (the federation's is unknown)")
                + ", more where a first launch builds the repository")

    def hold(self, share_percent: float) -> str:
        seconds = hold_needed(self.needed, share_percent, self.launch_rate or 0.0,
                              self.probe_interval)
        if seconds is None:
            return "? (launch rate unknown)"
        shown = f"~{format_duration(max(self.min_hold, math.ceil(seconds / 60) * 60))}"
        # longer than the maximum hold: the step would pause, inconclusive (add probes)
        return shown + " (> max hold)" if seconds > self.max_hold else shown


def plan_evidence(plan: RampPlan, *, prometheus_url: str | None, launch_rate: float | None,
                  probe: str | None, probe_interval: float, min_hold: float | None,
                  max_hold: float | None = None, read: LaunchReader = query_launches,
                  now: datetime | None = None) -> PlanEvidence | None:
    """The launches each step needs and how long they take at the federation's launch rate
    (--launch-rate, or the last hour's from Prometheus); None without an evidence source or
    a launch rate to plan with."""
    if not prometheus_url and not probe and launch_rate is None:
        return None
    # the others' launches as the gate will judge them (none known: the prior alone): one
    # function, launches_needed, says what the plan shows and what the gate asks
    reference, note = None, None
    if launch_rate is None and prometheus_url:
        until = now or datetime.now(UTC)
        try:
            found = read(prometheus_url, until - timedelta(hours=1), until, "member", 10.0)
            launch_rate = found.launch_rate
            reference = found.others(plan.member)
        except LiveError as exc:
            note = f"the federation's launch rate is unknown ({exc}): pass --launch-rate"
    least = min_hold if min_hold is not None else plan.hold_seconds / 3
    needed = (launches_needed() if reference is None
              else launches_needed(reference, reference_times=reference.times.total))
    return PlanEvidence(needed, launch_rate,
                        probe_interval if probe else None, least,
                        max(least, max_hold if max_hold is not None else 4 * plan.hold_seconds),
                        note, None if reference is None else reference.times.quantile(0.5))


def plan_table(plan: RampPlan, current_step: int | None = None,
               evidence: PlanEvidence | None = None) -> str:
    """The plan as a table: per step, the member's weight and share and everyone's share;
    with evidence, the launches each step needs and the hold that takes."""
    others = [n for n in plan.base_weights if n != plan.member]
    # the step's target (100% = the full weight) and the share it gives are two columns: at
    # the last step they differ (100% of the ramp may be 16.67% of launches)
    head = ["step", "step target", "weight", f"{plan.member} share",
            *(f"{n} share" for n in others), "then"]
    if evidence is not None:
        head += ["launches needed", "evidence hold"]
    table = [head]
    for step in plan.steps:
        marker = " (now)" if current_step == step.index else ""
        then = "ramp complete" if step.final else f"hold {plan.hold}"
        row = [
            f"{step.index + 1}/{len(plan.steps)}{marker}",
            "full weight" if step.final else f"{step.percent:g}%",
            f"{step.weight:g}",
            f"{step.share:.2f}%",
            *(f"{step.shares[n]:.2f}%" for n in others),
            then,
        ]
        if evidence is not None:
            row += [str(evidence.needed), evidence.hold(step.share)]
        table.append(row)
    return "\n".join(aligned_lines(table)) + "\n"


def ramp_io(publisher: Publish, clock: Clock | None, progress: Progress | None,
            on_step: StepHook | None, probe_spawn: Spawn | None = None,
            on_decision: Callable[[dict[str, object]], None] | None = None) -> RampIO:
    """What an engine talks to; the publisher also says what its target serves. A Publisher's
    target is checked here, before the engine writes anything: a target that cannot work is
    refused (exit 2) with federation.yaml untouched."""
    if isinstance(publisher, Publisher):
        publisher.check()
    return RampIO(publish=publisher, clock=clock or Clock(),
                  progress=progress or (lambda _: None), on_step=on_step,
                  on_decision=on_decision,
                  published=publisher.published if isinstance(publisher, Publisher) else None,
                  spawn_probe=probe_spawn or in_thread)
