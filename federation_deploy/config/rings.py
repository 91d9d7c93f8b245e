"""`rings:` (how a chart version goes through the federation) and `rollout:` (one going through
now): read with file:line:key errors, and the versions each member's releases get meanwhile."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from federation_deploy.config import schema
from federation_deploy.config.charts import ChartTable
from federation_deploy.config.model import Location, Member, RingPlan, RolloutState
from federation_deploy.config.problems import Checker
from federation_deploy.durations import parse_duration
from federation_deploy.errors import UsageError
from federation_deploy.yamlio import LocatedMap, line_of

SMALLEST = "smallest"


def read_rings(check: Checker, root: LocatedMap, members: Mapping[str, Member],
               declared: set[str], ci_staging: tuple[str, ...] | None) -> RingPlan | None:
    """The `rings:` block; its member names checked (ring 0 deployable members, ring 1 a
    routed, deployable member that is not the prime, or `smallest`)."""
    section = schema.RINGS
    node = check.section(root, "rings", section)
    if node is None:
        return None
    read = {key.name: check.value(node, "rings", key) for key in section.keys}
    staging = read["staging"]
    if staging is None:
        staging = list(ci_staging) if ci_staging is not None else [
            m.name for m in members.values() if not m.routed and m.deployable]
    else:
        for index, name in enumerate(staging):
            where = f"rings.staging[{index}]"
            if name not in declared:
                check.add(node["staging"], index, where, f"unknown member {name!r}")
            elif name in members and not members[name].deployable:
                check.add(node["staging"], index, where,
                          f"{name} is external: a rollout never deploys it")
    canary = read["canary"]
    if canary != SMALLEST:
        member = members.get(canary)
        problem = None
        if canary not in declared:
            problem = f"unknown member {canary!r} (or `{SMALLEST}`)"
        elif member is None:
            pass  # the member itself is invalid and already reported
        elif not member.routed or not member.deployable or member.prime:
            problem = (f"{canary} cannot be ring 1: ring 1 is a routed member this tool deploys "
                       "and not the prime (the versions reference)")
        elif canary in staging:
            problem = f"{canary} is in ring 0 (rings.staging) already"
        if problem:
            check.add(node, "canary", "rings.canary", problem)
    hold = read["hold"]
    try:
        parse_duration(hold)
    except UsageError as exc:
        check.add(node, "hold", "rings.hold", str(exc))
    return RingPlan(staging=tuple(staging), canary=canary,
                    shares=tuple(float(s) for s in read["shares"]), hold=hold,
                    versions_key=read["versions_key"],
                    location=Location(check.file, line_of(root, "rings")))


def read_rollout(check: Checker, root: LocatedMap, declared: set[str], charts: ChartTable,
                 rings: RingPlan | None) -> RolloutState | None:
    """The `rollout:` block written by `rollout`: its chart must be pinned in `charts:` at
    the version it goes to (the bump is its first write), its members declared."""
    section = schema.ROLLOUT
    before = len(check.problems)
    node = check.section(root, "rollout", section)
    if node is None:
        return None
    read = {key.name: check.value(node, "rollout", key) for key in section.keys}
    chart, to = read["chart"], read["to"]
    for key in ("from", "to"):
        if read[key] and not schema.EXACT_VERSION.match(read[key]):
            check.add(node, key, f"rollout.{key}", f"expected an exact version, got "
                      f"{read[key]!r}")
    if read["ring"] > 2:
        check.add(node, "ring", "rollout.ring", f"expected an integer from -1 to 2, got "
                  f"{read['ring']}")
    pin = charts.pins.get(chart)
    if chart and chart not in charts.declared:
        check.add(node, "chart", "rollout.chart", f"no chart {chart!r} in the charts: table")
    elif pin is not None and to and pin.version != to:
        check.add(node, "to", "rollout.to",
                  f"charts.{chart}.version is {pin.version}: a rollout goes to the pinned "
                  "version (its first write bumps the pin)")
    for index, name in enumerate(read["upgraded"] or []):
        if name not in declared:
            check.add(node["upgraded"], index, f"rollout.upgraded[{index}]",
                      f"unknown member {name!r}")
    canary = read["canary"]
    if canary is not None and canary not in declared:
        check.add(node, "canary", "rollout.canary", f"unknown member {canary!r}")
    upgrading = read["upgrading"]
    if upgrading is not None and upgrading not in declared:
        check.add(node, "upgrading", "rollout.upgrading", f"unknown member {upgrading!r}")
    external = read["external"] or {}
    for name, reported in external.items():
        if name not in declared:
            check.add(node["external"], name, f"rollout.external.{name}",
                      f"unknown member {name!r}")
        elif not isinstance(reported, str) or not reported:
            check.add(node["external"], name, f"rollout.external.{name}",
                      f"expected the version it reports (a string), got {reported!r}")
    if len(check.problems) > before:
        return None
    key = (rings.versions_key if rings is not None else None) or chart
    weight = read["canary_weight"]
    return RolloutState(
        chart=chart, from_version=read["from"], to_version=to, ring=read["ring"],
        upgraded=tuple(read["upgraded"] or ()), canary=canary,
        canary_weight=None if weight is None else float(weight), started=read["started"],
        rolled_back=read["rolled_back"], versions_key=key, upgrading=upgrading,
        ring1_passed_at=read["ring1_passed_at"],
        external={str(n): str(v) for n, v in external.items()} or None)


def versions_during_rollout(members: Mapping[str, Member], rollout: RolloutState | None
                            ) -> dict[str, Member]:
    """The members with the versions they run during rollout: a member not yet upgraded
    keeps `from` on its releases of the chart (a deploy of it meanwhile changes nothing); the
    pin (`to`) applies to the upgraded ones. Releases pinning their own version keep it."""
    if rollout is None:
        return dict(members)
    changed: dict[str, Member] = {}
    for name, member in members.items():
        if name in rollout.upgraded:
            changed[name] = member
            continue
        releases = tuple(
            replace(r, version=rollout.from_version)
            if r.pin == rollout.chart and not r.overrides_pin else r
            for r in member.releases)
        changed[name] = replace(member, releases=releases)
    return changed
