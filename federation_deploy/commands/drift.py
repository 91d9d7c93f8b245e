"""Command `drift`: does what runs match what the config says, per member, changing nothing?

Three parts per member, each clean, drift, not checked (and why) or not applicable:
  terraform  the stack planned with -detailed-exitcode (`terraform check`): resources changed
             behind terraform's back, or config not applied;
  helm       every release as deployed (`helm list`, `helm get values`) against `render`: not
             installed, not `deployed` (a pending upgrade), another chart version, other values
             (said as "differ" with the key paths; never a value or a digest of one);
  weights    the weight (and ramp flag) the redirector serves for the member against
             federation.yaml; the generation it serves is the redirector's member's business.
A part that could not be checked never counts as clean: exit 3 on drift anywhere, else 1 when
something could not be checked, else 0. In a sandbox, helm (stand-in members have no cluster)
and the terraform of a stack it has no emulator for are n/a, with a one-line reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation, Member
from federation_deploy.config.schema import shown_url
from federation_deploy.errors import (
    EXIT_CHANGES,
    EXIT_FAILED,
    EXIT_OK,
    FederationDeployError,
    UsageError,
)
from federation_deploy.progress import Progress, quiet
from federation_deploy.runner import Runner

if TYPE_CHECKING:
    from federation_deploy.actions.helm import Helm
    from federation_deploy.actions.kube_auth import ClusterTools
    from federation_deploy.traffic.live import Sample
    from federation_deploy.values.render import RenderedRelease

PARTS = ("terraform", "helm", "weights")
OUTPUT_FORMATS = ("table", "json")

CLEAN = "clean"
DRIFT = "drift"
NOT_CHECKED = "not checked"
NOT_APPLICABLE = "n/a"
SKIPPED = "skipped"

# the redirector's gauges of its configured hosts (redirector/metrics.py): every host of its
# config, healthy or not (/active_hosts lists only the healthy ones)
WEIGHT_METRIC = "federation_member_weight"
RAMP_METRIC = "federation_member_ramp"
MAX_KEY_PATHS = 8  # values: at most this many differing key paths named per release


@dataclass
class PartReport:
    part: str
    status: str
    detail: str = ""  # why not checked / not applicable, or a one-line summary
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth saying, not drift

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "detail": self.detail,
                                "findings": list(self.findings)}
        if self.notes:
            data["notes"] = list(self.notes)
        return data

    def cell(self) -> str:
        if self.status == DRIFT:
            return f"drift ({len(self.findings)})"
        return self.status


@dataclass
class MemberDrift:
    member: str
    parts: list[PartReport]

    @property
    def status(self) -> str:
        statuses = {p.status for p in self.parts}
        if DRIFT in statuses:
            return DRIFT
        if NOT_CHECKED in statuses:
            return NOT_CHECKED
        return CLEAN

    def as_json(self) -> dict[str, Any]:
        return {"member": self.member, "status": self.status,
                "parts": {p.part: p.as_json() for p in self.parts}}


# --------------------------------------------------------------------------------------------
# The command


def drift(
    fed: Federation | None,
    member: str | None,
    *,
    runner: Runner,
    progress: Progress,
    output: str = "table",
    parts: Sequence[str] = PARTS,
    redirector_url: str | None = None,
    report: Path | None = None,
    github_issue: bool = False,
) -> CommandResult:
    """Every member (or one) checked, or the members of an earlier `-o json` report; the
    table or JSON on stdout; exit 0 clean, 3 drift, 1 when a part could not be checked (and
    nothing drifted). github_issue: each member's drift issue kept (drift_issues.py). With
    a report, fed may be None (the issues job of drift.yml has no unlocked config)."""
    from federation_deploy.commands.drift_issues import keep_issues, read_report

    if report is not None:
        reports = reports_from_json(read_report(report))
    elif fed is None:
        raise UsageError("drift needs the federation's config, or --report FILE")
    else:
        reports = drift_report(fed, member, runner=runner, progress=progress, parts=parts,
                               redirector_url=redirector_url)
    result = drift_result(reports, output)
    if github_issue:
        from federation_deploy.actions.github import GitHubIssues

        kept = keep_issues(report_json(reports), GitHubIssues.from_environment())
        result = replace(result, messages=(*result.messages, *(k.describe() for k in kept)))
    return result


def reports_from_json(data: Mapping[str, Any]) -> list[MemberDrift]:
    """The members of a report read back (drift_issues.read_report checked its shape)."""
    reports = []
    for entry in data["members"]:
        parts = []
        for part in PARTS:
            p = entry["parts"].get(part) or {}
            parts.append(PartReport(part, str(p.get("status", NOT_CHECKED)),
                                    str(p.get("detail", "missing from the report")),
                                    [str(f) for f in p.get("findings") or []],
                                    [str(n) for n in p.get("notes") or []]))
        reports.append(MemberDrift(entry["member"], parts))
    return reports


def drift_report(
    fed: Federation,
    member: str | None,
    *,
    runner: Runner,
    progress: Progress | None = None,
    parts: Sequence[str] = PARTS,
    redirector_url: str | None = None,
    terraform_env: Mapping[str, str] | None = None,
    helm_executable: str | None = None,
    tools: ClusterTools | None = None,
) -> list[MemberDrift]:
    say = progress or quiet
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise UsageError(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    members = [fed.member(member)] if member else list(fed.members.values())
    url = default_redirector_url(fed, redirector_url)
    reports = []
    for m in members:
        found = []
        for part in PARTS:
            if part not in parts:
                found.append(PartReport(part, SKIPPED, "not asked (--part)"))
                continue
            say(f"drift: {m.name}: checking {part}")
            if part == "terraform":
                found.append(terraform_drift(fed, m, runner, env=terraform_env))
            elif part == "helm":
                found.append(helm_drift(fed, m, runner, helm_executable=helm_executable,
                                        tools=tools))
            else:
                found.append(weights_drift(fed, m, url))
        reports.append(MemberDrift(m.name, found))
    return reports


def default_redirector_url(fed: Federation, url: str | None) -> str:
    """--redirector-url, else a sandbox's own redirector, else https://<redirector.host>."""
    if url:
        return url
    if fed.sandbox is not None and fed.sandbox.redirector_url:
        return fed.sandbox.redirector_url
    return f"https://{fed.redirector.host}"


def drift_result(reports: Sequence[MemberDrift], output: str) -> CommandResult:
    statuses = {r.status for r in reports}
    code = (EXIT_CHANGES if DRIFT in statuses
            else EXIT_FAILED if NOT_CHECKED in statuses else EXIT_OK)
    if output == "json":
        stdout = json.dumps(report_json(reports), indent=2) + "\n"
    else:
        stdout = drift_table(reports)
    drifting = [r.member for r in reports if r.status == DRIFT]
    unchecked = [r.member for r in reports if r.status == NOT_CHECKED]
    messages = []
    if drifting:
        messages.append(f"drift in {', '.join(drifting)}")
    if unchecked:
        messages.append(f"not everything could be checked for {', '.join(unchecked)}: "
                        "not reported clean")
    if not drifting and not unchecked:
        messages.append("no drift")
    return CommandResult(stdout=stdout, exit_code=code, messages=tuple(messages))


def report_json(reports: Sequence[MemberDrift]) -> dict[str, Any]:
    return {"drift": any(r.status == DRIFT for r in reports),
            "members": [r.as_json() for r in reports]}


def drift_table(reports: Sequence[MemberDrift]) -> str:
    rows = [["member", *PARTS, "status"]]
    details = []
    for r in reports:
        by_part = {p.part: p for p in r.parts}
        rows.append([r.member, *(by_part[n].cell() if n in by_part else "-" for n in PARTS),
                     r.status])
        for p in r.parts:
            if p.status == NOT_CHECKED:
                details.append(f"{r.member} {p.part}: not checked: {p.detail}")
            for finding in p.findings:
                details.append(f"{r.member} {p.part}: {finding}")
            for note in p.notes:
                details.append(f"{r.member} {p.part}: note: {note}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    return "\n".join([*lines, *details]) + "\n"


def why(exc: FederationDeployError) -> str:
    """The first line of an error: what a not-checked part says (tools' output is in the
    progress on stderr; secrets are censored there already)."""
    lines = exc.render().strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# --------------------------------------------------------------------------------------------
# terraform


def terraform_drift(fed: Federation, member: Member, runner: Runner, *,
                    env: Mapping[str, str] | None = None) -> PartReport:
    from federation_deploy.commands.terraform import for_member

    if member.terraform is None:
        return PartReport("terraform", NOT_APPLICABLE, "no terraform stack")
    sandbox = fed.sandbox
    if sandbox is not None and (member.cloud != "aws" or sandbox.aws_endpoint is None):
        # a sandbox runs AWS stacks only, against its moto_server (never a real cloud)
        return PartReport("terraform", NOT_APPLICABLE,
                          f"in a sandbox: no emulator of {member.cloud} for its stack")
    try:
        # the plan's text (attribute values) on stderr with -v only: the part names its
        # resources, and the output goes into an issue
        summary, text = for_member(fed, member.name, runner, env=env).check(
            live=runner.full_output)
    except FederationDeployError as exc:
        return PartReport("terraform", NOT_CHECKED, why(exc))
    if not summary.changes:
        return PartReport("terraform", CLEAN, summary.line)
    return PartReport("terraform", DRIFT, summary.line, plan_resources(text) or [summary.line])


def plan_resources(text: str) -> list[str]:
    """`aws_ecr_repository.x will be updated in-place`: the resource lines of a plan (their
    addresses and actions, never attribute values)."""
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# ") and (" will be " in stripped or " must be " in stripped
                                          or " has changed" in stripped):
            found.append(stripped[2:])
    return list(dict.fromkeys(found))


# --------------------------------------------------------------------------------------------
# helm


def helm_drift(fed: Federation, member: Member, runner: Runner, *,
               helm_executable: str | None = None,
               tools: ClusterTools | None = None) -> PartReport:
    from federation_deploy.actions.helm import Helm, secret_strings
    from federation_deploy.actions.kube_auth import (
        cluster_access,
        find_cluster_tools,
        probe_cluster,
    )
    from federation_deploy.values.render import render_releases

    if not member.deployable or not member.releases:
        return PartReport("helm", NOT_APPLICABLE,
                          "external member: not deployed by us" if not member.deployable
                          else "no releases")
    if fed.sandbox is not None:
        # a sandbox's members are stand-ins on 127.0.0.1: no cluster holds their releases
        return PartReport("helm", NOT_APPLICABLE,
                          "in a sandbox: its members are stand-ins, without a cluster")
    helm: Helm | None = None
    try:
        rendered = render_releases(fed, member)
        tools = tools or find_cluster_tools(member)
        helm = Helm(runner, executable=helm_executable, secrets=secret_strings(rendered))
        findings: list[str] = []
        with cluster_access(fed, member, runner, tools) as access:
            probe_cluster(runner, access)
            helm.use_cluster(access)
            for item in rendered:
                findings += release_drift(helm, item)
    except FederationDeployError as exc:
        return PartReport("helm", NOT_CHECKED, why(exc))
    finally:
        if helm is not None:
            helm.use_cluster(None)
            helm.close()
    summary = f"{len(rendered)} release(s)"
    if findings:
        return PartReport("helm", DRIFT, summary, findings)
    return PartReport("helm", CLEAN, f"{summary}: versions and values as rendered")


def release_drift(helm: Helm, item: RenderedRelease) -> list[str]:
    """What differs between one deployed release and its rendering (no value is shown)."""
    release = item.release
    listed = helm.listed_release(release)
    if listed is None:
        return [f"{release.name}: not installed (namespace {release.namespace})"]
    found = []
    status = str(listed.get("status", ""))
    if status != "deployed":
        found.append(f"{release.name}: status {status or 'unknown'} "
                     f"(revision {listed.get('revision', '?')})")
    chart = str(listed.get("chart", ""))
    if release.version and not chart.endswith(f"-{release.version}"):
        found.append(f"{release.name}: chart {chart or '?'} deployed, "
                     f"{release.chart} {release.version} pinned")
    deployed = helm.deployed_values(release)
    differing = differing_paths(normalised(deployed or {}), normalised(item.values))
    if differing:
        shown = ", ".join(differing[:MAX_KEY_PATHS])
        more = f" and {len(differing) - MAX_KEY_PATHS} more" if len(differing) > MAX_KEY_PATHS \
            else ""
        found.append(f"{release.name}: values differ from render at {shown}{more}")
    return found


def normalised(value: Any) -> Any:
    """Values as JSON sees them (helm answers JSON: 1.0 comes back as 1; tuples are lists)."""
    if isinstance(value, Mapping):
        return {str(k): normalised(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalised(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def differing_paths(old: Any, new: Any, prefix: str = "", depth: int = 4) -> list[str]:
    """Dotted key paths (at most `depth` deep) where old and new differ: names, never values."""
    if old == new:
        return []
    if depth == 0 or not isinstance(old, dict) or not isinstance(new, dict):
        return [prefix or "(all values)"]
    found = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}.{key}" if prefix else key
        if key not in old or key not in new:
            found.append(path)
        else:
            found += differing_paths(old[key], new[key], path, depth - 1)
    return found


# --------------------------------------------------------------------------------------------
# weights


def weights_drift(fed: Federation, member: Member, redirector_url: str) -> PartReport:
    from federation_deploy.traffic.live import (
        LiveError,
        fetch_active_hosts,
        fetch_live_generation,
        fetch_metrics,
        metric_for,
    )
    from federation_deploy.traffic.weights import weights_of

    if not member.routed:
        return PartReport("weights", NOT_APPLICABLE, "not routed")
    expected = weights_of(fed)
    want = expected.weights.get(member.name, 0.0)
    want_ramp = member.name in expected.ramping
    label = member.host_name
    samples: tuple[Sample, ...] = ()
    try:
        samples = tuple(fetch_metrics(redirector_url))
        if any(s.name == WEIGHT_METRIC for s in samples):
            served = metric_for(samples, (WEIGHT_METRIC,), label)
            served_weight = 0.0 if served is None else served  # dropped: weight 0 or null
            ramp = metric_for(samples, (RAMP_METRIC,), label)
            served_ramp = bool(ramp)
        else:  # a redirector without the gauge (mybinder's): only healthy members are listed
            host = fetch_active_hosts(redirector_url).get(label)
            if host is None:
                return PartReport("weights", NOT_CHECKED,
                                  f"{shown_url(redirector_url)} does not list {label} (out "
                                  f"of rotation) and has no {WEIGHT_METRIC} metric")
            served_weight = float(host.get("weight") or 0.0)
            served_ramp = host.get("ramp") is True
    except LiveError as exc:
        return PartReport("weights", NOT_CHECKED, str(exc))
    findings = []
    notes = []
    if abs(served_weight - want) > 1e-9 or served_ramp != want_ramp:
        findings.append(f"the redirector serves weight {served_weight:g}"
                        f"{' (ramp)' if served_ramp else ''}, federation.yaml says "
                        f"{expected.describe(member.name, final=False)}")
    if member.name == fed.redirector.member:
        live = fetch_live_generation(redirector_url)
        if live is not None and live != fed.generation:
            said = (f"the redirector serves generation {live} of the weights, federation.yaml "
                    f"has {fed.generation}")
            if _every_weight_served(fed, samples):
                # a write that changed no weight (a freeze by an older version) bumped it: the
                # next weight change publishes the new generation
                notes.append(f"{said}: generation differs, weights equal (not drift)")
            else:
                findings.append(said)
    if findings:
        return PartReport("weights", DRIFT, shown_url(redirector_url), findings, notes)
    return PartReport("weights", CLEAN, f"weight {want:g} served by {shown_url(redirector_url)}",
                      [],
                      notes)


def _every_weight_served(fed: Federation, samples: tuple[Sample, ...]) -> bool:
    """Whether the redirector's weight gauges show every member's weight and ramp flag as
    federation.yaml says (False without the gauges: only healthy hosts could be compared)."""
    from federation_deploy.traffic.live import metric_for
    from federation_deploy.traffic.weights import weights_of

    if not any(s.name == WEIGHT_METRIC for s in samples):
        return False
    expected = weights_of(fed)
    for m in fed.members.values():
        if not m.routed:
            continue
        served = metric_for(samples, (WEIGHT_METRIC,), m.host_name) or 0.0
        ramp = bool(metric_for(samples, (RAMP_METRIC,), m.host_name))
        if abs(served - expected.weights.get(m.name, 0.0)) > 1e-9 \
                or ramp != (m.name in expected.ramping):
            return False
    return True
