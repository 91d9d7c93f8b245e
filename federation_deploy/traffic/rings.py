"""Version rings: who is in which ring, and the `rollout:` block written round-trip (one writer,
traffic/weights.py) together with the chart pin and the ring 1 member's weight."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from federation_deploy.config import ROLLOUT_KEYS, Federation, Member, RingPlan, RolloutState
from federation_deploy.config.rings import SMALLEST
from federation_deploy.errors import ConfigError, UsageError
from federation_deploy.traffic.shares import plain_number
from federation_deploy.traffic.weights import ConfigSnapshot, write_federation

# `owner:` of ring 1's `ramp:` block: the rollout drives it, `ramp` leaves it alone
OWNER = "rollout"


def rollout_owns(fed: Federation, member: str) -> str | None:
    """Why `ramp MEMBER` must leave member alone (its ramp is ring 1 of a rollout: the
    rollout drives, judges and rolls it back), or None."""
    m = fed.members.get(member)
    state = fed.rollout
    owned = m is not None and m.ramp is not None and m.ramp.owner == OWNER
    ring_one = (state is not None and state.canary == member and state.ring == 1
                and state.ring1_passed_at is None)
    if not owned and not ring_one:
        return None
    what = (f"the rollout of {state.chart} {state.to_version}" if state is not None
            else "a rollout")
    return (f"the ramp of {member} is ring 1 of {what} (`owner: rollout`): the rollout drives "
            "it, judges its last share and rolls it back with helm; `federation-deploy rollout "
            "--resume` goes on with it, `federation-deploy rollout --abort` ends it")


@dataclass(frozen=True)
class Rings:
    """The members of each ring for one chart: ring 0 (staging), ring 1 (one member), ring 2
    (the rest, in CD order). Only members with a release of the chart are listed."""

    staging: tuple[str, ...]
    canary: str
    rest: tuple[str, ...]

    def ring_of(self, member: str) -> int:
        if member in self.staging:
            return 0
        return 1 if member == self.canary else 2


def chart_members(fed: Federation, chart: str) -> list[Member]:
    """Members this tool deploys that have a release of the `charts:` entry chart."""
    return [m for m, _ in fed.releases_of_chart(chart) if m.deployable]


def choose_canary(fed: Federation, plan: RingPlan, chart: str,
                  healthy: frozenset[str] | None) -> str:
    """Ring 1's member: the one named, or `smallest` = the routed, deployable member with a
    release of chart, not the prime, not drained or ramping, with the smallest weight > 0
    among those the redirector reports healthy (healthy None: not known, config alone)."""
    candidates = {m.name: m for m in chart_members(fed, chart)
                  if m.routed and not m.prime and m.weight > 0 and m.drained is None
                  and m.ramp is None and m.name not in plan.staging}
    if plan.canary != SMALLEST:
        member = fed.member(plan.canary)
        if plan.canary not in candidates:
            raise UsageError(
                f"rings.canary {plan.canary} cannot be ring 1 now: it needs a release of "
                f"{chart}, a weight > 0 and no drain or ramp in progress (weight "
                f"{member.weight:g}{', drained' if member.drained else ''}"
                f"{', ramping' if member.ramp else ''})")
        return plan.canary
    pool = [m for m in candidates.values() if healthy is None or m.host_name in healthy]
    if not pool:
        raise UsageError(
            f"no member can be ring 1 of {chart}: none is routed with a weight > 0, not the "
            "prime, not drained or ramping" + ("" if healthy is None else
                                               ", and healthy at the redirector"))
    return min(pool, key=lambda m: (m.weight, m.name)).name


def plan_rings(fed: Federation, plan: RingPlan, chart: str, canary: str) -> Rings:
    """Ring 0 = rings.staging (those with the chart), ring 1 = canary, ring 2 = every other
    member with the chart that CD deploys, in CD order (ci.order first, then config order)."""
    with_chart = [m.name for m in chart_members(fed, chart)]
    staging = tuple(n for n in plan.staging if n in with_chart)
    ordered = [*fed.ci_order, *[n for n in fed.members if n not in fed.ci_order]]
    rest = tuple(n for n in ordered if n in with_chart and n not in staging and n != canary
                 and n not in fed.ci_manual)
    return Rings(staging, canary, rest)


def chart_releases(member: Member, chart: str) -> tuple[str, ...]:
    """The member's releases of chart (what a ring deploys and rolls back)."""
    return tuple(r.name for r in member.releases if r.pin == chart)


def write_rollout(snapshot: ConfigSnapshot, state: RolloutState | None, *,
                  pin: tuple[str, str] | None = None,
                  weights: Mapping[str, float] | None = None,
                  bump: bool = True) -> ConfigSnapshot:
    """Set (or remove, state None) the top-level `rollout:` block, and with pin (chart,
    version) charts.CHART.version, and with weights those members' weight with their `ramp:`
    block removed, in one compare-and-swap write of federation.yaml (weights.write_federation:
    ConfigChanged when someone else wrote it since snapshot; `generation:` one more when bump,
    i.e. when the published redirector config changes)."""
    display = str(snapshot.fed.path)

    def edit(data: CommentedMap) -> None:
        if pin is not None:
            _set_pin(data, pin[0], pin[1], display)
        for name, weight in (weights or {}).items():
            node = data["members"][name]
            node["weight"] = plain_number(weight)
            if "ramp" in node:
                del node["ramp"]
        _set_block(data, state)

    return write_federation(snapshot, edit, bump=bump)


def _set_pin(data: CommentedMap, chart: str, version: str, display: str) -> None:
    charts = data.get("charts")
    entry = charts.get(chart) if isinstance(charts, CommentedMap) else None
    if not isinstance(entry, CommentedMap):
        raise ConfigError.single(display, None, f"charts.{chart}",
                                 "chart not found while writing the rollout")
    current = entry.get("version")
    # keep the spelling people chose: a quoted version stays quoted the same way
    style = type(current) if isinstance(current, str) and type(current) is not str else str
    entry["version"] = style(version)


def _set_block(data: CommentedMap, state: RolloutState | None) -> None:
    if state is None:
        if "rollout" in data:
            del data["rollout"]
        return
    upgraded = CommentedSeq(list(state.upgraded))
    upgraded.fa.set_flow_style()
    values: dict[str, Any] = {
        "chart": state.chart, "from": state.from_version, "to": state.to_version,
        "ring": state.ring, "upgraded": upgraded, "canary": state.canary,
        "canary_weight": None if state.canary_weight is None
        else plain_number(state.canary_weight),
        "started": state.started, "rolled_back": state.rolled_back,
        "upgrading": state.upgrading, "ring1_passed_at": state.ring1_passed_at,
        "external": CommentedMap(state.external) if state.external else None,
    }
    block = CommentedMap()
    for key in ROLLOUT_KEYS:
        if values[key] is not None:
            block[key] = values[key]
    if "rollout" in data:
        data["rollout"] = block
        return
    # before `members:` (after `generation:`), where a reader of the file meets it early
    keys = list(data)
    data.insert(keys.index("members") if "members" in keys else len(keys), "rollout", block)


def describe_versions(fed: Federation, chart: str) -> list[tuple[str, str]]:
    """(member, version of chart it runs per config) for every member with the chart."""
    found = []
    for member, release in fed.releases_of_chart(chart):
        found.append((member.name, release.version))
    return list(dict.fromkeys(found))


def rollout_text(fed: Federation) -> str | None:
    """The rollout in progress for `traffic` and `rollout --dry-run`: a heading (chart,
    versions, ring, accepted set, a pause) and per member its ring, version, weight, state;
    None without one."""
    from federation_deploy.traffic.formatting import aligned_lines

    state = fed.rollout
    if state is None:
        return None
    accepted = state.accepted_versions
    head = (f"rollout of {state.chart} {state.from_version} -> {state.to_version}: "
            + ("recorded, not started" if state.ring < 0 else f"ring {state.ring}")
            + (f"; the redirector accepts {state.versions_key} "
               f"{', '.join(next(iter(accepted.values())))}" if accepted else "")
            + (f"; paused: {state.rolled_back}" if state.rolled_back else ""))
    if state.waiting_for:
        head += (f"; every member this tool deploys is upgraded, waiting for "
                 f"{', '.join(state.waiting_for)} (not ours) to report {state.to_version}")
    return "\n".join([head, *aligned_lines(ring_rows(fed, state, fed.rings))]) + "\n"


def planned_canary(fed: Federation, plan: RingPlan | None, state: RolloutState) -> str | None:
    """Ring 1's member: the one recorded, else the one a start would choose now (config
    alone; None when none can be)."""
    if state.canary is not None or plan is None:
        return state.canary
    try:
        return choose_canary(fed, plan, state.chart, None)
    except UsageError:
        return None


def ring_rows(fed: Federation, state: RolloutState, plan: RingPlan | None) -> list[list[str]]:
    """The rollout as table rows: member, ring, version, weight, what it is doing (ring 1:
    its step and the evidence's verdict so far)."""
    staging = plan.staging if plan is not None else ()
    canary = planned_canary(fed, plan, state)
    rows = [["member", "ring", "version", "weight", "state"]]
    for name, version in describe_versions(fed, state.chart):
        member = fed.members[name]
        ring = "0" if name in staging else "1" if name == canary else "2"
        doing = "upgraded" if name in state.upgraded else "waiting"
        if name == state.canary and member.ramp is not None:
            step = member.ramp.step
            doing = (f"ring 1 at {member.ramp.current_share:g}% (step {step + 1}/"
                     f"{len(member.ramp.steps)})" if step >= 0 else "ring 1 at 0%")
            verdict = (member.ramp.evidence or {}).get("verdict")
            if verdict:
                doing += f", evidence: {verdict}"
        rows.append([name, ring, version, f"{member.weight:g}", doing])
    for name, version in (state.external or {}).items():
        rows.append([name, "-", version, f"{fed.members[name].weight:g}",
                     f"not ours: keeps version {version}" if version != state.to_version
                     else "not ours: upgraded"])
    return rows


def upgraded_with(state: RolloutState, names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*state.upgraded, *names]))
