"""Ramp planning (pure): the weights and shares of every step, the steps a ramp may take, and
whether the redirector's /active_hosts shows a step's weights."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from federation_deploy.config import Federation, Member
from federation_deploy.durations import parse_duration
from federation_deploy.errors import UsageError
from federation_deploy.progress import printable
from federation_deploy.traffic.shares import share_to_weight, shares

DEFAULT_STEPS: tuple[float, ...] = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0)
DEFAULT_HOLD = "30m"
FULL = 100.0
# Published weights are rounded to this many significant digits (more if needed so that the
# share computed back from the rounded weight stays within SHARE_TOLERANCE percent points).
SIGNIFICANT_DIGITS = 6
SHARE_TOLERANCE = 0.01

def parse_steps(text: str) -> tuple[float, ...]:
    """Percentages from `1,5,10,25,50,100`; see check_steps for what is accepted."""
    items = [item.strip().rstrip("%") for item in text.split(",")]
    values: list[float] = []
    for item in items:
        try:
            values.append(float(item))
        except ValueError:
            raise UsageError(
                f"invalid --steps {text!r}: {item!r} is not a number "
                "(expected increasing percentages like 1,5,10,25,50,100)"
            ) from None
    return check_steps(values)


# What the redirector does with a ramping member's share, per `redirector.ramp_policy`: one
# wording for the ramp's first progress line, `ramp --help` and the sandbox demo.
RAMP_POLICY_MEANINGS = {
    "sticky": "the member gets a set of repositories whose estimated launches make up its "
              "share (popular ones among those it keeps at its full weight first), each "
              "repository on one member",
    "per-launch": "each launch is a uniform draw, so the member's share is exact but a "
                  "repository lands on several members",
}


def describe_ramp_policy(policy: str) -> str:
    """`ramp_policy sticky: ...`: what the configured policy does to a ramping member."""
    return f"ramp_policy {policy}: {RAMP_POLICY_MEANINGS.get(policy, 'unknown policy')}"


def check_steps(values: Iterable[float]) -> tuple[float, ...]:
    """Validate step percentages: each in (0, 100], strictly increasing. The full weight
    (100) is always the last step: it is appended when missing, because a ramp takes the
    member to its full weight."""
    steps = tuple(float(v) for v in values)
    if not steps:
        raise UsageError("a ramp needs at least one step")
    for value in steps:
        if not math.isfinite(value) or not 0 < value <= FULL:
            raise UsageError(f"invalid ramp step {value:g}: steps are percentages in (0, 100]")
    for before, after in zip(steps, steps[1:], strict=False):
        if after <= before:
            shown = ",".join(f"{s:g}" for s in steps)
            raise UsageError(f"ramp steps must increase: {shown} ({after:g} after {before:g})")
    if steps[-1] != FULL:
        steps = (*steps, FULL)
    return steps


def round_weight(weight: float, others_total: float, share_percent: float) -> float:
    """Round weight to SIGNIFICANT_DIGITS significant digits, or more when the rounded weight
    would give a share further than SHARE_TOLERANCE points from share_percent."""
    if weight == 0:
        return 0.0
    for digits in range(SIGNIFICANT_DIGITS, 18):
        rounded = float(f"{weight:.{digits}g}")
        back = 100.0 * rounded / (rounded + others_total)
        if abs(back - share_percent) <= SHARE_TOLERANCE:
            return rounded
    return weight


@dataclass(frozen=True)
class RampStep:
    """One step of a ramp: the member gets `share` percent of launches with weight `weight`.

    `percent` is the step as given (100 = the full target weight); for steps below 100,
    share == percent up to rounding. `weights`/`shares` cover every member in rotation.
    """

    index: int
    percent: float
    weight: float
    share: float
    weights: Mapping[str, float]
    shares: Mapping[str, float]

    @property
    def final(self) -> bool:
        return self.percent == FULL


@dataclass(frozen=True)
class RampPlan:
    """A whole ramp, computed from the current config: rollback targets included."""

    member: str
    steps: tuple[RampStep, ...]
    to_weight: float
    hold: str
    hold_seconds: float
    others_total: float
    base_weights: Mapping[str, float]  # everyone in rotation, the member at 0
    notes: tuple[str, ...] = field(default=())

    @property
    def percents(self) -> tuple[float, ...]:
        return tuple(s.percent for s in self.steps)

    def weights_at(self, index: int) -> Mapping[str, float]:
        """Weights published at step index; -1 is before the first step (the member at 0)."""
        return self.base_weights if index < 0 else self.steps[index].weights

    def member_weight_at(self, index: int) -> float:
        # before the first step the member is at its base weight: 0 for a ramp, the new
        # weight for a one-off change (plan_weight)
        return self.base_weights.get(self.member, 0.0) if index < 0 else self.steps[index].weight

    def member_share_at(self, index: int) -> float:
        if index < 0:
            return shares(self.base_weights).get(self.member, 0.0)
        return self.steps[index].share


def others_in_rotation(fed: Federation, member: str) -> dict[str, float]:
    """Weights of the members that share launches with a ramping member: routed, weight > 0,
    the member itself excluded (its weight is what the ramp sets)."""
    return {m.name: m.weight for m in fed.members.values()
            if m.routed and m.weight > 0 and m.name != member}


def check_rampable(fed: Federation, name: str) -> Member:
    """The member, if a ramp may touch it; UsageError (exit 2) otherwise."""
    member = fed.member(name)
    if member.cloud == "external":
        raise UsageError(
            f"member {name!r} is external (run by a partner): its traffic is set by hand, "
            "it cannot be ramped"
        )
    if not member.routed:
        raise UsageError(f"member {name!r} is not routed (routed: false): it gets no launches")
    return member


def plan_ramp(
    fed: Federation,
    member_name: str,
    steps: Iterable[float] | None = None,
    to_weight: float | None = None,
    hold: str | None = None,
) -> RampPlan:
    """The plan of a ramp of member_name over steps (percent of launches; 100 = to_weight).

    The other members keep their weights. At a step of s% the member's weight is
    share_to_weight(s, O), O the sum of the weights of the others in rotation, rounded (see
    round_weight); at 100 it is to_weight. Steps at or above the share that to_weight itself
    gives are dropped (with a note): they would send the member more launches during the
    ramp than after it. Defaults come from a ramp in progress, then from the member's
    config (target_weight) and DEFAULT_STEPS / DEFAULT_HOLD.
    """
    member = check_rampable(fed, member_name)
    state = member.ramp
    if to_weight is None:
        to_weight = state.to_weight if state is not None else member.target_weight
    if to_weight is None:
        raise UsageError(
            f"member {member_name!r} has no target_weight in config: pass --to-weight W "
            "(the weight it has at 100%)"
        )
    if not math.isfinite(to_weight) or to_weight <= 0:
        raise UsageError(f"--to-weight must be a number > 0, got {to_weight:g}")
    hold = hold if hold is not None else (state.hold if state is not None else DEFAULT_HOLD)
    hold_seconds = parse_duration(hold)
    if steps is None:
        steps = state.steps if state is not None else DEFAULT_STEPS
    percents = check_steps(steps)

    others = others_in_rotation(fed, member_name)
    others_total = sum(others.values())
    if others_total <= 0:
        raise UsageError(
            f"no other member is in rotation (routed with weight > 0): a share of launches "
            f"for {member_name!r} cannot be set"
        )
    final_share = 100.0 * to_weight / (to_weight + others_total)
    notes: list[str] = []
    kept = tuple(p for p in percents if p == FULL or p < final_share)
    dropped = [p for p in percents if p not in kept]
    if dropped:
        shown = [f"{p:g}%" for p in dropped]
        listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
        notes.append(
            f"step{'s' if len(shown) > 1 else ''} {listed} dropped: at its full weight "
            f"{to_weight:g} {member_name} gets {final_share:.2f}% of launches, and a ramp never "
            "gives it more than that"
        )

    base = _in_config_order(fed, {**others, member_name: 0.0})
    plan_steps: list[RampStep] = []
    for index, percent in enumerate(kept):
        if percent == FULL:
            weight = float(to_weight)
        else:
            weight = round_weight(share_to_weight(percent, others_total), others_total, percent)
        weights = _in_config_order(fed, {**others, member_name: weight})
        step_shares = shares(weights)
        plan_steps.append(RampStep(
            index=index, percent=percent, weight=weight, share=step_shares[member_name],
            weights=weights, shares=step_shares,
        ))
    return RampPlan(
        member=member_name, steps=tuple(plan_steps), to_weight=float(to_weight), hold=hold,
        hold_seconds=hold_seconds, others_total=others_total, base_weights=base,
        notes=tuple(notes),
    )


def resolve_plan(
    fed: Federation,
    member: str,
    steps: tuple[float, ...] | None = None,
    to_weight: float | None = None,
    hold: str | None = None,
) -> RampPlan:
    """The plan of a new ramp, or of the ramp in progress (which --steps/--to-weight may not
    contradict; --hold may change). UsageError (exit 2) on anything refused."""
    checked = check_rampable(fed, member)
    if checked.drained is not None:
        drained = checked.drained
        raise UsageError(
            f"{member} is drained since {drained.since} ({printable(drained.reason)}): restore "
            f"it first with `federation-deploy traffic restore {member}`"
            + (", which resumes its paused ramp" if checked.ramp is not None else "")
        )
    state = checked.ramp
    if state is None and checked.weight > 0:
        # a ramp starts from 0: its first step would cut a member in service to 1%, and a
        # rollback or --abort would take it out of rotation
        others = others_in_rotation(fed, member)
        current = shares({**others, member: checked.weight})[member]
        raise UsageError(
            f"{member} is in service at {current:.2f}% (weight {checked.weight:g}): a ramp "
            f"starts from 0; use `federation-deploy traffic set {member} --weight W` to change "
            f"its weight (or take it out of rotation first with `federation-deploy traffic set "
            f"{member} --weight 0`, then ramp it)"
        )
    if state is not None:
        shown = ",".join(f"{s:g}" for s in state.steps)
        if steps is not None and check_steps(steps) != state.steps:
            raise UsageError(
                f"a ramp of {member} is in progress with steps {shown}: run without --steps to "
                "resume it, or stop it with --abort first"
            )
        if to_weight is not None and to_weight != state.to_weight:
            raise UsageError(
                f"a ramp of {member} is in progress to weight {state.to_weight:g}: run without "
                "--to-weight to resume it, or stop it with --abort first"
            )
    plan = plan_ramp(fed, member, steps, to_weight, hold)
    if state is not None and plan.percents != state.steps:
        raise UsageError(
            f"the ramp of {member} in progress has steps {shown}, but the weights in config "
            f"now allow only {','.join(f'{p:g}' for p in plan.percents)}: stop it with --abort "
            "and start again"
        )
    return plan


def plan_abort(fed: Federation, member: str) -> RampPlan:
    """A plan with no steps whose only state (index -1) is the member at weight 0 and the
    others as they are: what an abort publishes and waits for."""
    return plan_weight(fed, member, 0.0)


def plan_weight(fed: Federation, member: str, weight: float) -> RampPlan:
    """A plan with no steps whose only state (index -1) is the member at weight and the others
    as they are: what a one-off change (abort, drain, restore, set) publishes and waits for."""
    weights = {m.name: m.weight for m in fed.members.values()
               if m.routed and (m.weight > 0 or m.name == member)}
    weights[member] = weight
    others = sum(w for name, w in weights.items() if name != member)
    return RampPlan(member=member, steps=(), to_weight=weight, hold="0s", hold_seconds=0.0,
                    others_total=others, base_weights=_in_config_order(fed, weights))


def _in_config_order(fed: Federation, weights: Mapping[str, float]) -> dict[str, float]:
    return {name: weights[name] for name in fed.members if name in weights}


def weights_disagreement(
    hosts: Mapping[str, Mapping[str, Any]],
    expected: Mapping[str, float],
    member: str,
    ramp_flag: bool,
    may_be_absent: bool = False,
    final_weight: float | None = None,
) -> str | None:
    """None when /active_hosts agrees with the expected weights, else the first difference.

    The ramping member must be listed with its weight and ramp flag (absent at weight 0, or
    when may_be_absent), and, when ramping with a final_weight published, with that final
    weight: a redirector that has not loaded it would pick the member's repositories for
    another end. Other members may be absent (out of rotation is not the ramp's business),
    but when listed their weights must be the expected ones.
    """
    want = expected.get(member, 0.0)
    host = hosts.get(member)
    if want > 0:
        if host is None:
            if may_be_absent:
                return _others_disagreement(hosts, expected, member)
            return f"{member} is not in /active_hosts"
        got = host.get("weight")
        if not same_weight(got, want):
            return f"{member} has weight {got} there (expected {want:g})"
        if bool(host.get("ramp")) != ramp_flag:
            return f"{member} has ramp {bool(host.get('ramp'))} there (expected {ramp_flag})"
        if ramp_flag and final_weight is not None:
            got = host.get("final_weight")
            if got is None:
                return (f"{member} has no final_weight there (expected {final_weight:g}; "
                        "the redirector has not loaded it)")
            if not same_weight(got, final_weight):
                return f"{member} has final_weight {got!r} there (expected {final_weight:g})"
    elif host is not None:
        return f"{member} is still in /active_hosts (weight {host.get('weight')})"
    return _others_disagreement(hosts, expected, member)


def _others_disagreement(
    hosts: Mapping[str, Mapping[str, Any]], expected: Mapping[str, float], member: str
) -> str | None:
    for name, other in hosts.items():
        if name == member or name not in expected:
            continue
        if not same_weight(other.get("weight"), expected[name]):
            return f"{name} has weight {other.get('weight')} there (expected {expected[name]:g})"
    return None


def same_weight(got: Any, want: float) -> bool:
    """Is got (a weight from config or /active_hosts) the weight want, but for float noise?"""
    if isinstance(got, bool) or not isinstance(got, int | float):
        return False
    return math.isclose(float(got), want, rel_tol=1e-9, abs_tol=1e-12)
