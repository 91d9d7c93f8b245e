"""Command `traffic`: weights and target shares per member, ramps in progress, live state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from federation_deploy.commands.freeze import freeze_line
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation, Member
from federation_deploy.durations import Clock
from federation_deploy.errors import EXIT_FAILED, EXIT_OK
from federation_deploy.progress import printable
from federation_deploy.traffic.formatting import OUTPUT_FORMATS as OUTPUT_FORMATS  # for the CLI
from federation_deploy.traffic.formatting import (
    aligned_lines,
    dump_rows,
    paused_text,
    ramp_value,
    share_cell,
    share_value,
    weight_cell,
    weight_value,
)
from federation_deploy.traffic.live import (
    HEALTH_METRICS,
    LiveState,
    check_redirector_url,
    health_reason,
    metric_for,
    read_live_state,
    redirect_count,
)
from federation_deploy.traffic.publish import redirector_url_for
from federation_deploy.traffic.rings import rollout_text
from federation_deploy.traffic.shares import routed_weights, shares


@dataclass
class TrafficRow:
    name: str
    weight: float
    share: float
    ramp: dict[str, Any] | None = None
    live: dict[str, Any] | None = None
    drained: dict[str, Any] | None = None  # reason, since, previous_weight

    def as_json(self) -> dict[str, Any]:
        """The row in JSON/YAML: the vocabulary of `members` (tables.weight_value, ...)."""
        out: dict[str, Any] = {"name": self.name, "weight": weight_value(self.weight),
                               "share": share_value(self.share), "ramp": self.ramp,
                               "drained": self.drained}
        if self.live is not None:
            out["live"] = self.live
        return out


def traffic(fed: Federation, redirector_url: str | None, output: str,
            clock: Clock | None = None) -> CommandResult:
    """The `traffic` table (or JSON/YAML); with a redirector URL the live columns too, and a
    warning and exit 1 when the live state is incomplete. A sandbox's own redirector is
    read by default. A freeze in force is one line (after the table; stderr otherwise)."""
    rows = traffic_report(fed, redirector_url_for(fed, redirector_url))
    errors = live_errors(rows)
    data = traffic_table(rows) if output == "table" else traffic_data(rows, output)
    rings = rollout_text(fed)  # a rollout in progress: who runs which version, ring 1's step
    frozen = freeze_line(fed, clock)
    if rings is not None and output == "table":
        data += "\n" + rings
    if frozen is not None and output == "table":
        data += "\n" + frozen + "\n"
    said = [text.rstrip("\n") for text in (rings, frozen) if text]
    return CommandResult(stdout=data,
                         messages=tuple(said) if output != "table" else (),
                         warnings=tuple(f"live state incomplete: {e}" for e in errors),
                         exit_code=EXIT_FAILED if errors else EXIT_OK)


def traffic_report(fed: Federation, redirector_url: str | None = None) -> list[TrafficRow]:
    """Rows of the traffic table; live columns only with a redirector URL (what could not be
    read is in each row's live `errors`: live_errors)."""
    check_redirector_url(redirector_url)
    live = read_live_state(redirector_url) if redirector_url else None
    rows = traffic_rows(fed, live)
    if live is not None and live.errors:
        for row in rows:
            assert row.live is not None
            row.live["errors"] = list(live.errors)
    return rows


def traffic_rows(fed: Federation, live: LiveState | None = None) -> list[TrafficRow]:
    """One row per routed member: weight, target share, ramp in progress, live state."""
    weights = routed_weights(fed)
    target = shares(weights)
    live_shares = _live_shares(fed, live) if live is not None else {}
    rows: list[TrafficRow] = []
    for name, weight in weights.items():
        drained = fed.members[name].drained
        row = TrafficRow(name=name, weight=weight, share=target[name],
                         ramp=ramp_value(fed.members[name].ramp),
                         drained=None if drained is None else {
                             "reason": drained.reason, "since": drained.since,
                             "previous_weight": weight_value(drained.previous_weight)})
        if live is not None:
            row.live = _live_of(fed.members[name], live, live_shares)
        rows.append(row)
    return rows


def traffic_data(rows: list[TrafficRow], output: str) -> str:
    """The rows as JSON or YAML (-o json|yaml)."""
    return dump_rows([r.as_json() for r in rows], output)


def live_errors(rows: list[TrafficRow]) -> list[str]:
    """What the redirector could not tell: the command warns first and exits 1."""
    return sorted({e for r in rows for e in (r.live or {}).get("errors", [])})


def traffic_table(rows: list[TrafficRow]) -> str:
    """Aligned text: target columns, then live columns when present, a short ramp and drained
    cell; the details (since when, hold, last healthy check, why) in lines below the table,
    so that a ramp keeps the table narrow (it was some 220 columns wide)."""
    live = any(r.live is not None for r in rows)
    drained = any(r.drained is not None for r in rows)
    head = ["name", "weight", "share"]
    if live:
        head += ["live", "live weight", "live share", "health", "redirects"]
    head += ["ramp", *(["drained"] if drained else [])]
    table = [head]
    details: list[str] = []
    for r in rows:
        line = [r.name, weight_cell(r.weight), share_cell(r.share)]
        if live:
            lv = r.live or {}
            health = lv.get("healthy")
            rotation = lv.get("in_rotation")
            reason = lv.get("reason")
            line += [
                "?" if rotation is None else ("in rotation" if rotation else "out"),
                weight_cell(lv.get("weight")),
                share_cell(lv.get("share")),
                "?" if health is None else ("ok" if health else f"failing ({reason or '?'})"),
                "-" if lv.get("redirects") is None else f"{lv['redirects']:g}",
            ]
        cell, detail = _ramp_cell(r.name, r.ramp, paused=r.drained is not None)
        line.append(cell)
        if detail:
            details.append(f"{r.name}: {detail}")
        if drained:
            line.append("-" if r.drained is None else "yes")
        if r.drained is not None:
            details.append(f"{r.name}: drained since {r.drained['since']}: "
                           f"{printable(r.drained['reason'])}")
        table.append(line)
    return "\n".join([*aligned_lines(table), *details]) + "\n"


def _ramp_cell(member: str, ramp: Mapping[str, Any] | None,
               paused: bool = False) -> tuple[str, str | None]:
    """The ramp's table cell (where it is) and its detail line (None: nothing more to say)."""
    if ramp is None:
        return "-", None
    steps = ramp["steps"]
    step = ramp["step"]
    if paused:
        return f"step {step + 1}/{len(steps)}, paused", "its ramp is paused while it is drained"
    where = f"step {step + 1}/{len(steps)} ({ramp['percent']:g}%)"
    evidence = ramp.get("evidence")
    preflight = evidence is not None and evidence.get("stage") == "pre-flight"
    if step < 0:
        # before step 1: the pre-flight, or a ramp with probes qualifying the member at 0%
        # (evidence at step 0)
        qualifying = (ramp.get("started") and not ramp.get("rolled_back")
                      and (evidence is None or evidence.get("step") == 0))
        where = ("pre-flight at 0%, nobody routed" if preflight
                 else "qualifying at 0% with probes" if qualifying else "not started")
    # the evidence gate's last verdict at this step: what `traffic` shows of the evidence
    seen = ((f"; pre-flight evidence: {evidence_text(evidence)}" if preflight else
             f"; evidence at step {evidence.get('step')}: {evidence_text(evidence)}")
            if evidence and evidence.get("verdict") else "")
    if ramp.get("rolled_back") or ramp.get("inconclusive"):
        return (f"{where}, paused",
                f"{paused_text(member, ramp['rolled_back'], ramp.get('inconclusive'))}{seen}")
    since = f" since {ramp['started']}" if ramp.get("started") else ""
    healthy = f", healthy at {ramp['last_healthy']}" if ramp.get("last_healthy") else ""
    return where, f"ramp at {where}{since}, hold {ramp['hold']}{healthy}{seen}"


def evidence_text(evidence: Mapping[str, Any]) -> str:
    """`inconclusive, 3 user + 12 probe launches, 0.0% failed vs 2.0%, p90 31s vs 45s`."""
    def pct(key: str) -> str:
        value = evidence.get(key)
        return "-" if value is None else f"{float(value):.1%}"

    def secs(key: str) -> str:
        value = evidence.get(key)
        return "-" if value is None else f"{float(value):.0f}s"

    kind = "pre-flight" if evidence.get("stage") == "pre-flight" else "probe"
    text = (f"{evidence.get('verdict')}, {evidence.get('user_launches', 0):g} user + "
            f"{evidence.get('probe_launches', 0):g} {kind} launches, {pct('failure_rate')} "
            f"failed vs {pct('others_failure_rate')}, p90 {secs('p90_seconds')} vs "
            f"{secs('others_p90_seconds')}")
    if evidence.get("verdict") == "inconclusive" and evidence.get("needed"):
        text += f", needs about {evidence['needed']} more launches"
    return text


def _live_shares(fed: Federation, live: LiveState) -> dict[str, float]:
    """The shares the redirector serves, by member (its hosts are keyed by host names)."""
    weights: dict[str, float] = {}
    for name, host in fed.by_member(live.active_hosts).items():
        weight = host.get("weight")
        if isinstance(weight, int | float) and not isinstance(weight, bool):
            weights[name] = float(weight)
    return shares(weights)


def _live_of(member: Member, live: LiveState, live_shares: Mapping[str, float]
             ) -> dict[str, Any]:
    # the redirector knows the member by its host name: /active_hosts and the metrics' label
    label = member.host_name
    host = live.active_hosts.get(label)
    health = metric_for(live.samples, HEALTH_METRICS, label)
    return {
        "in_rotation": (host is not None) if live.hosts_known else None,
        "weight": None if host is None else weight_value(host.get("weight")),
        "share": None if host is None else share_value(live_shares.get(member.name, 0.0)),
        "healthy": None if health is None else health > 0,
        "reason": health_reason(live.samples, label),
        "redirects": redirect_count(live.samples, label) if live.samples else None,
    }
