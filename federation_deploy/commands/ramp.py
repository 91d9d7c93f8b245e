"""Command `ramp`: run, advance or abort a member's traffic ramp; its plan as a table."""

from __future__ import annotations

from collections.abc import Callable

from federation_deploy.config import Federation, load_federation
from federation_deploy.errors import UsageError
from federation_deploy.traffic.formatting import aligned_lines
from federation_deploy.traffic.publish import Publisher
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
from federation_deploy.traffic.ramp.plan import RampPlan, check_rampable, resolve_plan
from federation_deploy.traffic.weights import ConfigChanged, writer_lock

# An abort re-reads federation.yaml and tries again when a ramp wrote it in between: it wins.
ABORT_ATTEMPTS = 5

# Called with the plan before anything is written or published; raises to refuse (the CLI
# asks for confirmation there).
Confirm = Callable[[RampPlan], None]


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
) -> RampOutcome:
    """Run (or resume) the ramp of member to the end, every step held and checked; or with
    advance, one step for a scheduled job: check the current step, and move to the next one
    when its hold is over (or start the ramp), returning at once.

    on_step is called when the redirector reports a step's weights, before its hold.
    Raises VerificationError after a rollback, UsageError on refused input, WeightsConflict
    when another ramp runs on this machine (the writer lock) or someone else changed the
    weights under this one (it then stops without publishing).
    """
    # the lock first: a second ramp on this machine is told that one runs, whatever it asks
    with writer_lock(fed.config_dir, f"ramp {member}{' --advance' if advance else ''}",
                     member):
        plan = resolve_plan(fed, member, steps, to_weight, hold)
        if confirm is not None:
            confirm(plan)
        io = ramp_io(publisher, clock, progress, on_step)
        engine = RampEngine(fed, plan, settings or RampSettings(), io)
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


def plan_table(plan: RampPlan, current_step: int | None = None) -> str:
    """The plan as a table: per step, the member's weight and share and everyone's share."""
    others = [n for n in plan.base_weights if n != plan.member]
    head = ["step", "percent", "weight", "share", *(f"{n} share" for n in others), "then"]
    table = [head]
    for step in plan.steps:
        marker = " (now)" if current_step == step.index else ""
        then = "ramp complete" if step.final else f"hold {plan.hold}"
        table.append([
            f"{step.index + 1}/{len(plan.steps)}{marker}",
            f"{step.percent:g}%",
            f"{step.weight:g}",
            f"{step.share:.2f}%",
            *(f"{step.shares[n]:.2f}%" for n in others),
            then,
        ])
    return "\n".join(aligned_lines(table)) + "\n"


def ramp_io(publisher: Publish, clock: Clock | None, progress: Progress | None,
            on_step: StepHook | None) -> RampIO:
    """What an engine talks to; the publisher also says what its target serves. A Publisher's
    target is checked here, before the engine writes anything: a target that cannot work is
    refused (exit 2) with federation.yaml untouched."""
    if isinstance(publisher, Publisher):
        publisher.check()
    return RampIO(publish=publisher, clock=clock or Clock(),
                  progress=progress or (lambda _: None), on_step=on_step,
                  published=publisher.published if isinstance(publisher, Publisher) else None)
