"""`rollout --dry-run` and the checks a rollout makes before it writes anything: the rings,
the version it goes to, the members this tool does not deploy (commands/rollout.py)."""

from __future__ import annotations

from collections.abc import Callable

from federation_deploy.commands.result import CommandResult
from federation_deploy.commands.rollout_io import RolloutIO, external_versions, read_versions
from federation_deploy.config import EXACT_VERSION, Federation, Member
from federation_deploy.config.chart_versions import parse_version
from federation_deploy.config.freeze import active_freeze, format_time, printable
from federation_deploy.durations import Clock
from federation_deploy.errors import UsageError
from federation_deploy.traffic.formatting import aligned_lines
from federation_deploy.traffic.ramp.plan import plan_ramp
from federation_deploy.traffic.rings import choose_canary, plan_rings, rollout_text


def check_rings(fed: Federation) -> None:
    if fed.rings is None:
        raise UsageError(f"{fed.path}: no `rings:` block: a rollout needs the rings (staging, "
                         "canary, shares, hold); see README, Rolling out a new version")


def check_target(fed: Federation, chart: str, version: str, allow_downgrade: bool) -> str:
    """VERSION checked against the chart's pin (returned): a chart version (semver, as helm
    takes it), not the pin already, and not older than it unless allow_downgrade."""
    pin = fed.chart(chart)
    new = parse_version(version) if EXACT_VERSION.match(version) else None
    if new is None:
        raise UsageError(f"{version!r} is not a valid chart version: expected semver like "
                         "1.2.3 or 1.2.3-0.dev.git.12.habcdef0")
    if pin.version == version:
        raise UsageError(f"charts.{chart}.version is {version} already and no rollout is "
                         "in progress: nothing to roll out")
    old = parse_version(pin.version)
    if old is not None and new < old and not allow_downgrade:
        raise UsageError(f"{version} is older than charts.{chart}.version {pin.version} "
                         f"(semver: {pin.version} is newer): a downgrade is refused without "
                         "--allow-downgrade")
    return pin.version


def external_note(state_external: dict[str, str], to_version: str) -> str:
    """`not ours: gesis keeps 1.0.0` for the plan and the end of a rollout."""
    return "; ".join(f"not ours: {name} keeps version {version}" if version != to_version
                     else f"not ours: {name} reports {version}"
                     for name, version in state_external.items())


def dry_run(fed: Federation, chart: str | None, version: str | None, *,
            healthy: Callable[[], frozenset[str] | None] = RolloutIO.healthy,
            reported: Callable[[Member], dict[str, object] | None] = read_versions,
            allow_downgrade: bool = False, clock: Clock | None = None) -> CommandResult:
    """The rings and who runs what, changing nothing: refused as the real run would refuse
    (a version, a ring 1 member, healthy at the redirector as the run asks), and a freeze
    that would refuse the run said."""
    check_rings(fed)
    plan = fed.rings
    assert plan is not None
    notes: list[str] = []
    freeze = active_freeze(fed, (clock or Clock()).now())
    if freeze is not None:
        notes.append(f"the federation is frozen until {format_time(freeze.until)} by "
                     f"{printable(freeze.who)} ({printable(freeze.reason)}): the real run "
                     "would be refused (exit 2); `--abort` still runs")
    text = rollout_text(fed)
    if text is not None:
        return CommandResult(stdout=text, messages=(
            *notes, "a rollout is in progress: --resume goes on with it; nothing changed "
                    "(--dry-run)"))
    if chart is None or version is None:
        raise UsageError("rollout --dry-run needs CHART VERSION (no rollout in progress)")
    from_version = check_target(fed, chart, version, allow_downgrade)
    canary = choose_canary(fed, plan, chart, healthy())
    rings = plan_rings(fed, plan, chart, canary)
    member = fed.members[canary]
    steps = plan_ramp(fed, canary, plan.shares, member.weight, plan.hold).steps
    shown = ", ".join(f"{s.percent:g}%" for s in steps if not s.final)
    rows = [["ring", "members", "what happens"],
            ["0", ", ".join(rings.staging) or "-", f"deployed {version}, verified"],
            ["1", canary, f"weight 0, deployed, then {shown or 'no share below its own'} of "
                          f"launches, then its weight {member.weight:g}; each held "
                          f"{plan.hold} and judged"],
            ["2", ", ".join(rings.rest) or "-", "deployed in CD order, verified"]]
    key = plan.versions_key or chart
    for name, running in external_versions(fed, key, reported).items():
        rows.append(["-", name, f"not ours: keeps version {running}; the rollout keeps "
                                f"accepting it until {name} reports {version}"
                     if running == from_version else
                     f"not ours: reports {running}"])
    return CommandResult(stdout="\n".join(aligned_lines(rows)) + "\n", messages=(
        *notes,
        f"charts.{chart}.version {from_version} -> {version}; nothing changed (--dry-run)"))
