"""Markdown summaries of a deploy and of a ramp, for a CI job's summary page (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from federation_deploy.config import Federation
from federation_deploy.progress import printable
from federation_deploy.traffic.formatting import share_cell, weight_cell
from federation_deploy.traffic.shares import routed_weights, shares

if TYPE_CHECKING:
    # the deploy command imports this module; the ramp engine is loaded only by a ramp
    from federation_deploy.commands.deploy import DeployReport
    from federation_deploy.traffic.ramp.engine import RampOutcome


def _cell(text: str) -> str:
    # free text on one line (progress.printable), and a pipe would end the markdown table cell
    return printable(text).replace("|", "\\|")


def deploy_markdown(report: DeployReport) -> str:
    """Which releases went where, at which revision, and whether the member verified."""
    lines = [f"### deploy of `{report.member}`", "",
             f"stages: {', '.join(report.stages)}"]
    if report.helm_version or report.server_version:
        lines.append(f"helm {report.helm_version or '?'}, Kubernetes "
                     f"{report.server_version or '?'}")
    if report.releases:
        lines += ["", "| release | namespace | chart | version | revision | status |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {_cell(r.name)} | {_cell(r.namespace)} | {_cell(r.chart)} | "
                  f"{_cell(r.version)} | {'-' if r.revision is None else r.revision} | "
                  f"{_cell(r.status)} |" for r in report.releases]
    if "rollout" in report.stages:
        lines += ["", f"rollout: {len(report.workloads)} deployment(s)/daemonset(s) rolled out"]
    if report.verified is not None:
        checks = report.verified.health.get("checks", [])
        lines += ["", f"verify: healthy ({len(checks)} check(s) ok), versions equal the "
                      "prime's"]
    return "\n".join(lines) + "\n"


def ramp_markdown(fed: Federation, member: str, outcome: RampOutcome | None,
                  failure: str | None = None,
                  decisions: Sequence[Mapping[str, object]] = (),
                  interrupted: Sequence[str] | None = None) -> str:
    """The ramp's result (or why it rolled back, or where an interrupted one stopped and how
    to resume it: interrupted, its lines), each decision of this run with its evidence, and
    every routed member's weight and share as config now has them (fed: loaded after)."""
    if interrupted is not None:
        verdict = "**interrupted**: " + (interrupted[0].removeprefix("interrupted: ")
                                         if interrupted else "")
    elif outcome is not None:
        verdict = f"**{outcome.status}**: {outcome.message}"
    elif failure is not None and "inconclusive" in failure and "paused" in failure:
        verdict = f"**paused (inconclusive)**: {failure}"
    else:
        verdict = f"**rolled back**: {failure or 'unknown failure'}"
    weights = routed_weights(fed)
    share = shares(weights)
    lines = [f"### ramp of `{member}`", "", _cell(verdict), ""]
    for command in (interrupted or ())[1:]:
        lines += [f"- {command.strip().split(': ', 1)[0]}: "
                  f"`{command.strip().split(': ', 1)[-1].strip()}`"]
    if interrupted and len(interrupted) > 1:
        lines.append("")
    lines += _decisions(decisions)
    lines += ["| member | weight | share | ramp |", "|---|---|---|---|"]
    for name, weight in weights.items():
        state = fed.members[name].ramp
        ramp = "-" if state is None else (
            f"step {state.step + 1}/{len(state.steps)} ({state.current_share:g}%)"
            if state.step >= 0 else "not started")
        lines.append(f"| {_cell(name)} | {weight_cell(weight)} | {share_cell(share[name])} | "
                     f"{ramp} |")
    ramp_state = fed.members[member].ramp
    evidence = ramp_state.evidence if ramp_state is not None else None
    if evidence:
        # the evidence gate's last verdict: launches seen, failures and launch time vs the
        # federation's, and what it decided
        preflight = evidence.get("stage") == "pre-flight"
        lines += ["", "pre-flight evidence (at 0%, nobody routed to it: the member's most "
                  "launched pool repositories launched on it):" if preflight
                  else f"evidence at step {evidence.get('step')}:", "",
                  f"| verdict | user launches | {'pre-flight' if preflight else 'probe'} "
                  "launches | failed | failure rate "
                  "(others) | p50 (others) | p90 (others) | launches still needed |",
                  "|---|---|---|---|---|---|---|---|"]
        lines.append(
            f"| {evidence.get('verdict')} | {evidence.get('user_launches')} | "
            f"{evidence.get('probe_launches')} | {evidence.get('failed')} | "
            f"{_rate(evidence.get('failure_rate'))} ({_rate(evidence.get('others_failure_rate'))})"
            f" | {_secs(evidence.get('p50_seconds'))} ({_secs(evidence.get('others_p50_seconds'))})"
            f" | {_secs(evidence.get('p90_seconds'))} ({_secs(evidence.get('others_p90_seconds'))})"
            f" | {evidence.get('needed')} |")
    return "\n".join(lines) + "\n"


def _decisions(decisions: Sequence[Mapping[str, object]]) -> list[str]:
    """Each decision of this run that ended a hold (or --advance's check): where, what, the
    launches (users', probes' or the pre-flight's), failure rate and launch time against the
    federation's, the verdict, and why (the verdict's reason: tests and risks)."""
    if not decisions:
        return []
    lines = ["decisions of this run:", "",
             "| where | decision | user launches | probe / pre-flight launches | failed | "
             "failure rate (others) | p50 / p90 (others) | verdict | why |",
             "|---|---|---|---|---|---|---|---|---|"]
    for d in decisions:
        kind = "pre-flight" if d.get("stage") == "pre-flight" else "probe"
        probes = d.get("probe_launches")
        lines.append(
            f"| {_cell(str(d.get('where')))} | {_ACTIONS.get(str(d.get('action')), '?')} | "
            f"{_num(d.get('user_launches'))} | "
            f"{'-' if probes is None else f'{_num(probes)} {kind}'} | {_num(d.get('failed'))} | "
            f"{_rate(d.get('failure_rate'))} ({_rate(d.get('others_failure_rate'))}) | "
            f"{_secs(d.get('p50_seconds'))} / {_secs(d.get('p90_seconds'))} "
            f"({_secs(d.get('others_p50_seconds'))} / {_secs(d.get('others_p90_seconds'))}) | "
            f"{_num(d.get('verdict'))} | {_cell(str(d.get('reason') or '-'))} |")
    return [*lines, ""]


_ACTIONS = {"pass": "advanced", "rollback": "rolled back", "pause": "paused", "hold": "held"}


def _num(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else _cell(str(value))


def _rate(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.1%}"


def _secs(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.0f}s"


def rollout_markdown(fed: Federation, chart: str, version: str, outcome: str | None,
                     failure: str | None = None) -> str:
    """The rollout's result (or why it stopped) and, per member with the chart, its ring, the
    version config gives it, its weight and share, and ring 1's step and evidence."""
    from federation_deploy.traffic.rings import describe_versions, planned_canary

    verdict = f"**{'stopped' if outcome is None else 'done'}**: {outcome or failure}"
    weights = routed_weights(fed)
    share = shares(weights)
    state, plan = fed.rollout, fed.rings
    staging = plan.staging if plan is not None else ()
    canary = planned_canary(fed, plan, state) if state is not None else None
    lines = [f"### rollout of `{chart}` {version}", "", _cell(verdict), "",
             "| member | ring | version | weight | share | step |", "|---|---|---|---|---|---|"]
    for name, running in describe_versions(fed, chart):
        ring = "0" if name in staging else "1" if name == canary else "2"
        ramp = fed.members[name].ramp
        step = "-" if ramp is None or ramp.step < 0 else \
            f"{ramp.current_share:g}% ({(ramp.evidence or {}).get('verdict', 'no evidence yet')})"
        lines.append(f"| {name} | {ring} | {running} | "
                     f"{weight_cell(weights[name]) if name in weights else '-'} | "
                     f"{share_cell(share[name]) if name in share else '-'} | {_cell(step)} |")
    to_version = state.to_version if state is not None else version
    for name, running in ((state.external or {}) if state is not None else {}).items():
        kept = "upgraded" if running == to_version else f"keeps version {running}"
        lines.append(f"| {name} | not ours | {running} | "
                     f"{weight_cell(weights[name]) if name in weights else '-'} | "
                     f"{share_cell(share[name]) if name in share else '-'} | "
                     f"{_cell('not ours: ' + kept)} |")
    return "\n".join(lines) + "\n"
