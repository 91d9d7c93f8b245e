"""The sandbox demo's ring: a chart bump rolled through staging, one member on a small share of
launches, then every member, measuring the share per step from real redirects."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from federation_deploy.config import load_federation
from federation_deploy.durations import Clock
from federation_deploy.progress import Progress
from federation_deploy.runner import Runner
from federation_deploy.traffic.ramp.plan import RampStep
from federation_deploy.traffic.weights import read_snapshot, write_federation

DEMO_CHART = "binderhub"
DEMO_SHARES = (5.0,)


@dataclass(frozen=True)
class RingMeasure:
    """One step of ring 1: the share it gives its member and the share measured."""

    member: str
    target: float
    measured: float
    launches: int


def next_version(version: str) -> str:
    """A made-up next version of a pin, for the demo's bump (1.2.3 -> 1.2.4; a dev build
    1.0.0-0.dev.git.3170.h4e5ff4a -> 1.0.0-0.dev.git.3171.h4e5ff4a)."""
    head, dash, tail = version.partition("-")
    if dash:
        parts = tail.split(".")
        numbers = [i for i, p in enumerate(parts) if p.isdigit()]
        if numbers:
            parts[numbers[-1]] = str(int(parts[numbers[-1]]) + 1)
            return f"{head}-{'.'.join(parts)}"
    major, minor, patch = head.lstrip("v").split(".")[:3]
    return f"{'v' if head.startswith('v') else ''}{major}.{minor}.{int(patch) + 1}{dash}{tail}"


def add_rings(config_dir: Path, shares: tuple[float, ...], hold: str) -> None:
    """A `rings:` block in the sandbox's own federation.yaml (ring 1: the smallest healthy
    member), written through the one writer."""

    def edit(data: CommentedMap) -> None:
        block = CommentedMap()
        block["canary"] = "smallest"
        listed = CommentedSeq(list(shares))
        listed.fa.set_flow_style()
        block["shares"] = listed
        block["hold"] = hold
        keys = list(data)
        data.insert(keys.index("members") if "members" in keys else len(keys), "rings", block)

    write_federation(read_snapshot(config_dir), edit, bump=False)


def demo_ring(config_dir: Path, *, publisher: object, redirector_url: str, runner: Runner,
              progress: Progress, measure: Callable[[], tuple[Mapping[str, float], int]],
              clock: Clock | None = None, shares: tuple[float, ...] = DEMO_SHARES,
              hold: str = "1s", check_interval: float = 0.5) -> list[RingMeasure]:
    """Bump DEMO_CHART to a made-up next version and roll it out through the rings with the
    sandbox's own deploy (the stand-ins then report the new version); after each step of
    ring 1, measure() sends launches through the redirector and returns the shares."""
    from federation_deploy.commands.rollout import production_io, run_rollout
    from federation_deploy.traffic.ramp.engine import RampSettings

    add_rings(config_dir, shares, hold)
    fed = load_federation(config_dir)
    version = next_version(fed.chart(DEMO_CHART).version)
    measures: list[RingMeasure] = []

    def on_step(step: RampStep) -> None:
        state = load_federation(config_dir).rollout
        member = state.canary if state is not None else None
        if member is None:
            return
        measured, launches = measure()
        measures.append(RingMeasure(member, step.share, measured.get(member, 0.0), launches))
        progress(f"    ring 1: {member} on {DEMO_CHART} {version} at "
                 f"{'its full weight' if step.final else f'{step.percent:g}%'}: target "
                 f"{step.share:.2f}%, measured {measured.get(member, 0.0):.2f}% of {launches} "
                 "launches")

    settings = RampSettings(redirector_url=redirector_url, gate="time",
                            check_interval=check_interval, poll_interval=0.2,
                            settle_timeout=30.0, request_timeout=2.0)
    io = production_io(publisher, runner, "10m", progress)  # type: ignore[arg-type]
    io.on_step = on_step
    if clock is not None:
        io.clock = clock
    outcome = run_rollout(fed, DEMO_CHART, version, settings, io)
    progress(f"    {outcome.message}")
    state = load_federation(config_dir).rollout
    if outcome.status == "waiting" and state is not None:
        # a member not ours (gesis) kept in rotation on the old version; its operators
        # upgrade it themselves: the stand-in is told to, and the rollout then ends
        from federation_deploy.sandbox.member import standin_state

        current = load_federation(config_dir)
        for name in state.waiting_for:
            url = current.members[name].url
            versions = dict(standin_state(url).get("versions") or {})
            standin_state(url, {"versions": {**versions, state.versions_key: version}})
            progress(f"    {name} (not ours) upgrades itself to {DEMO_CHART} {version}")
        outcome = run_rollout(current, DEMO_CHART, version, settings, io, resume=True)
        progress(f"    {outcome.message}")
    return measures
