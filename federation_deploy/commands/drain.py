"""Commands `traffic drain`, `traffic restore`, `traffic set`: one weight change, written and
published as a ramp's abort is (compare-and-swap, then wait for the redirector).

A drain sets the member's weight to 0 and records why in federation.yaml (`drained:`: reason,
since, previous weight). A ramp in progress is paused, not ended: its `ramp:` block stays, and
the running ramp process sees the change at its next check and stops (abort wins). restore
gives back the previous weight, or the weight of a paused ramp's step (its hold starting
again). set is the deliberate change, refused where drain/restore or the ramp are the tools.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from federation_deploy.actions.notify import Event
from federation_deploy.commands.announce import announced
from federation_deploy.commands.freeze import freeze_notice, refuse_when_frozen
from federation_deploy.commands.ramp import ramp_io
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import DrainState, Federation, Member, load_federation
from federation_deploy.errors import UsageError, WeightsConflict
from federation_deploy.progress import printable
from federation_deploy.runner import Runner
from federation_deploy.traffic.publish import PublishRequest as PublishRequest  # for the CLI
from federation_deploy.traffic.publish import publisher_for
from federation_deploy.traffic.ramp.engine import (
    Clock,
    Progress,
    Publish,
    RampEngine,
    RampOutcome,
    RampSettings,
)
from federation_deploy.traffic.ramp.plan import plan_ramp
from federation_deploy.traffic.ramp.state import utc_timestamp, write_drain, write_member
from federation_deploy.traffic.shares import shares
from federation_deploy.traffic.weights import ConfigChanged

# A drain, restore or set re-reads federation.yaml and tries again when it changed without a
# weight change (a holding ramp records last_healthy); a weight change by another writer wins.
ATTEMPTS = 5

# Called with the question before anything is written (the CLI asks for confirmation there).
Confirm = Callable[[str], None]


def drain(fed: Federation, member: str, reason: str, request: PublishRequest, *,
          runner: Runner, progress: Progress, confirm: Confirm) -> CommandResult:
    """`traffic drain`: the change published as requested; stdout says what was done."""
    publisher, settings = _publishing(fed, request, runner, progress)
    return _announced(fed, "drain", drain_member(fed, member, reason, publisher, settings=settings,
                                progress=progress, confirm=confirm))


def restore(fed: Federation, member: str, request: PublishRequest, *,
            runner: Runner, progress: Progress, confirm: Confirm) -> CommandResult:
    """`traffic restore`: the change published as requested; stdout says what was done."""
    publisher, settings = _publishing(fed, request, runner, progress)
    return _announced(fed, "restore", restore_member(fed, member, publisher, settings=settings,
                                  progress=progress, confirm=confirm))


def set_weight(fed: Federation, member: str, weight: float, reason: str | None,
               request: PublishRequest, *, runner: Runner, progress: Progress,
               confirm: Confirm) -> CommandResult:
    """`traffic set`: the change published as requested; stdout says what was done."""
    publisher, settings = _publishing(fed, request, runner, progress)
    return _announced(fed, "set", set_member_weight(fed, member, weight, publisher, reason=reason,
                                     settings=settings, progress=progress, confirm=confirm))


def _publishing(fed: Federation, request: PublishRequest, runner: Runner,
                progress: Progress) -> tuple[Publish, RampSettings]:
    request = request.for_federation(fed)  # a sandbox's own redirector by default
    publisher, settle = publisher_for(request, runner, progress)
    return publisher, RampSettings(redirector_url=request.redirector_url, settle_timeout=settle)


def _announced(fed: Federation, action: str, outcome: RampOutcome) -> CommandResult:
    """The change's result, announced (Grafana, the webhook) like every weight change."""
    event = Event("weights", action, outcome.message, outcome.member)
    return announced(fed, event, CommandResult(stdout=outcome.message + "\n"))


def drain_member(
    fed: Federation, member: str, reason: str, publisher: Publish, *,
    settings: RampSettings | None = None, clock: Clock | None = None,
    progress: Progress | None = None, confirm: Confirm | None = None,
) -> RampOutcome:
    """Weight 0 now, a `drained:` block recording reason, since and the previous weight; a
    ramp in progress paused (its block kept). Published and waited for."""
    if not reason.strip():
        raise UsageError("--reason must say why the member is drained (it goes into "
                         "federation.yaml and the commit)")
    clock = clock or Clock()
    _say_frozen(fed, f"the drain of {member}", clock, progress)

    def attempt(fed: Federation) -> RampOutcome:
        m = _routed(fed, member)
        if m.drained is not None:
            # the rerun after a failed publish: federation.yaml already says drained
            if _republished(fed, m, publisher, settings, clock, progress, "drained"):
                return _unpublished_outcome(fed, m, "drained")
            raise UsageError(f"{member} is already drained since {m.drained.since} "
                             f"({printable(m.drained.reason)}); `traffic restore {member}` "
                             "gives it back")
        _check_not_last(fed, m, 0.0)
        since = utc_timestamp(clock.now())
        state = DrainState(reason=reason.strip(), since=since, previous_weight=m.weight)
        paused = m.ramp is not None
        if confirm is not None:
            confirm(f"Drain {member} (weight {m.weight:g} -> 0"
                    f"{', its ramp paused' if paused else ''})?")
        engine = _engine(fed, member, 0.0, publisher, settings, clock, progress)
        engine.change(lambda config: write_drain(config, member, 0.0, state),
                      ramp_flag=False,
                      done=f"{member} drained (weight {m.weight:g} -> 0) and published",
                      failed=f"{member} drained")
        note = "; its ramp is paused (`traffic restore` resumes it)" if paused else ""
        return _outcome(engine, "drained",
                        f"{member} drained: no new launches (was weight {m.weight:g}; "
                        f"reason: {printable(state.reason)}){note}")

    return _retrying(fed, "drain", member, attempt)


def restore_member(
    fed: Federation, member: str, publisher: Publish, *,
    settings: RampSettings | None = None, clock: Clock | None = None,
    progress: Progress | None = None, confirm: Confirm | None = None,
) -> RampOutcome:
    """The `drained:` block removed and the weight given back: the previous weight, or for a
    paused ramp the weight of its current step (its hold counted again from now)."""
    clock = clock or Clock()
    _say_frozen(fed, f"the restore of {member}", clock, progress)

    def attempt(fed: Federation) -> RampOutcome:
        m = _routed(fed, member)
        drained = m.drained
        if drained is None:
            if _republished(fed, m, publisher, settings, clock, progress, "restored"):
                return _unpublished_outcome(fed, m, "restored")
            raise UsageError(f"{member} is not drained (weight {m.weight:g}); to change its "
                             f"weight: `traffic set {member} --weight W`")
        ramp = m.ramp
        weight = drained.previous_weight
        if ramp is not None:
            weight = _paused_step_weight(fed, m)
            # the step's hold starts again: the member was out for a while
            ramp = replace(ramp, started=utc_timestamp(clock.now()), last_healthy=None)
        if confirm is not None:
            confirm(f"Restore {member} (weight 0 -> {weight:g}; drained since {drained.since}: "
                    f"{printable(drained.reason)})?")
        engine = _engine(fed, member, weight, publisher, settings, clock, progress)
        engine.change(lambda config: write_drain(config, member, weight, None, ramp),
                      ramp_flag=ramp is not None and weight > 0,
                      done=f"{member} restored (weight 0 -> {weight:g}) and published",
                      failed=f"{member} restored")
        if ramp is not None:
            message = (f"{member} restored at step {ramp.step + 1}/{len(ramp.steps)} of its "
                       f"ramp (weight {weight:g}); continue it with `federation-deploy ramp "
                       f"{member} --advance` (scheduled) or `federation-deploy ramp {member}`")
        else:
            message = f"{member} restored: weight {weight:g}"
        return _outcome(engine, "restored", message)

    return _retrying(fed, "restore", member, attempt)


def set_member_weight(
    fed: Federation, member: str, weight: float, publisher: Publish, *,
    reason: str | None = None, settings: RampSettings | None = None,
    clock: Clock | None = None, progress: Progress | None = None,
    confirm: Confirm | None = None,
) -> RampOutcome:
    """A deliberate weight change, published and waited for; refused on a drained member and
    on a member being ramped (each has its own command)."""
    if weight < 0:
        raise UsageError(f"--weight must be >= 0, got {weight:g}")
    refuse_when_frozen(fed, f"traffic set {member}", clock, progress)

    def attempt(fed: Federation) -> RampOutcome:
        m = _routed(fed, member)
        if m.drained is not None:
            raise UsageError(
                f"{member} is drained since {m.drained.since} "
                f"({printable(m.drained.reason)}): give its weight back with "
                f"`federation-deploy traffic restore {member}`")
        if m.ramp is not None:
            raise UsageError(
                f"{member} is being ramped (step {m.ramp.step + 1}/{len(m.ramp.steps)}): let "
                f"the ramp set its weight (`federation-deploy ramp {member}`), stop it with "
                f"`federation-deploy ramp {member} --abort`, or take it out of rotation with "
                f"`federation-deploy traffic drain {member} --reason TEXT`")
        if weight == m.weight and _republished(fed, m, publisher, settings, clock, progress,
                                               "set"):
            return _unpublished_outcome(fed, m, "set")
        _check_not_last(fed, m, weight)
        why = f" ({printable(reason)})" if reason else ""
        if confirm is not None:
            confirm(f"Set the weight of {member}: {m.weight:g} -> {weight:g}{why}?")
        engine = _engine(fed, member, weight, publisher, settings, clock, progress)
        engine.change(lambda config: write_member(config, member, weight, None),
                      ramp_flag=False,
                      done=f"{member} weight {m.weight:g} -> {weight:g} published",
                      failed=f"{member} set to weight {weight:g}")
        return _outcome(engine, "set", f"{member} weight {m.weight:g} -> {weight:g}{why}")

    return _retrying(fed, "set", member, attempt)


def _say_frozen(fed: Federation, action: str, clock: Clock, progress: Progress | None) -> None:
    """A drain or restore runs through a freeze (an incident never waits), and says so."""
    notice = freeze_notice(fed, action, clock)
    if notice is not None and progress is not None:
        progress(notice)


def _routed(fed: Federation, member: str) -> Member:
    """The member, if launches are routed to it (an external member too: a partner's outage
    is drained like ours)."""
    m = fed.member(member)
    if not m.routed:
        raise UsageError(f"member {member!r} is not routed (routed: false): it gets no "
                         "launches to drain, restore or set")
    return m


def _check_not_last(fed: Federation, m: Member, weight: float) -> None:
    """The prime must stay in rotation (the redirector sends every other path to it), and
    someone must get the launches."""
    if m.prime and weight == 0:
        raise UsageError(f"{m.name} is the prime (the redirector proxies every other path to "
                         "it): make another member prime before taking it out of rotation")
    others = sum(o.weight for o in fed.routed if o.name != m.name)
    if others + weight <= 0:
        raise UsageError("no member would be left in rotation: every other routed member is "
                         "at weight 0")


def _paused_step_weight(fed: Federation, m: Member) -> float:
    """The weight of a paused ramp's current step, planned as the ramp plans it (0 before
    its first step)."""
    assert m.ramp is not None
    if m.ramp.step < 0:
        return 0.0
    percent = m.ramp.steps[m.ramp.step]
    plan = plan_ramp(fed, m.name)
    step = next((s for s in plan.steps if s.percent == percent), None)
    if step is None:
        raise UsageError(
            f"the paused ramp of {m.name} is at {percent:g}%, which the other members' weights "
            f"no longer allow ({', '.join(f'{p:g}' for p in plan.percents)}): edit its "
            "`ramp:` block or remove it in federation.yaml, then restore")
    return step.weight


def _engine(fed: Federation, member: str, weight: float, publisher: Publish,
            settings: RampSettings | None, clock: Clock | None,
            progress: Progress | None) -> RampEngine:
    io = ramp_io(publisher, clock, progress, None)
    return RampEngine.for_change(fed, member, weight, settings or RampSettings(), io)


def _republished(fed: Federation, m: Member, publisher: Publish,
                 settings: RampSettings | None, clock: Clock | None,
                 progress: Progress | None, status: str) -> bool:
    """True when federation.yaml already held this change but the redirector was not given
    it (a publish that failed after the write): it is published and waited for now."""
    engine = _engine(fed, m.name, m.weight, publisher, settings, clock, progress)
    return engine.republish(ramp_flag=m.ramp is not None and m.drained is None and m.weight > 0,
                            done=f"{m.name} {status} (weight {m.weight:g}): published",
                            failed=f"{m.name} {status}")


def _unpublished_outcome(fed: Federation, m: Member, status: str) -> RampOutcome:
    share = shares({n: x.weight for n, x in fed.members.items() if x.routed}).get(m.name, 0.0)
    return RampOutcome(member=m.name, status=status, step=-1, weight=m.weight, share=share,
                       message=f"{m.name} {status} (federation.yaml already said so): weight "
                               f"{m.weight:g} now published")


def _outcome(engine: RampEngine, status: str, message: str) -> RampOutcome:
    member = engine.member
    weight = engine.plan.member_weight_at(-1)
    share = shares(engine.plan.base_weights).get(member, 0.0)
    return RampOutcome(member=member, status=status, step=-1, weight=weight, share=share,
                       message=message)


def _retrying(fed: Federation, action: str, member: str,
              attempt: Callable[[Federation], RampOutcome]) -> RampOutcome:
    """attempt(fed), again from a fresh read when federation.yaml changed without a weight
    change; a weight change by someone else stops it (exit 1), naming what changed."""
    for tries in range(ATTEMPTS):
        try:
            return attempt(fed)
        except ConfigChanged as exc:
            now = load_federation(fed.config_dir)
            if now.generation != fed.generation or tries == ATTEMPTS - 1:
                raise WeightsConflict(f"{action} of {member} not done: another writer came "
                                      f"first: {exc}") from None
            fed = now
    raise AssertionError("unreachable")
