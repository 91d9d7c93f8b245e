"""Command `members`: each member's cloud, url, weight, share of launches, prime and ramp."""

from __future__ import annotations

from typing import Any

from federation_deploy.commands.freeze import freeze_line
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation
from federation_deploy.durations import Clock
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
from federation_deploy.traffic.shares import member_share


def members_rows(fed: Federation) -> list[dict[str, Any]]:
    """One row per member: name, cloud, url, weight, share (% of launches), prime, routed, ramp;
    weight and share typed as traffic's (tables.weight_value, tables.share_value)."""
    rows = []
    for m in fed.members.values():
        rows.append({
            "name": m.name,
            "cloud": m.cloud,
            "url": m.url,
            "weight": weight_value(m.weight) if m.routed else None,
            "share": share_value(member_share(fed, m)),
            "prime": m.prime,
            "routed": m.routed,
            "ramp": ramp_value(m.ramp),
        })
    return rows


MEMBER_COLUMNS = ["name", "cloud", "url", "weight", "share", "prime", "ramp"]


def _ramp_cell(member: str, ramp: dict[str, Any] | None) -> str:
    if ramp is None:
        return "-"
    if ramp.get("rolled_back") or ramp.get("inconclusive"):
        return (f"{ramp['percent']:g}%, "
                f"{paused_text(member, ramp['rolled_back'], ramp.get('inconclusive'))}")
    return f"{ramp['percent']:g}%"


def members(fed: Federation, output: str = "table", clock: Clock | None = None
            ) -> CommandResult:
    """The members as a table for people, or JSON or YAML for scripts; a freeze in force is
    one line after the table (on stderr with JSON or YAML)."""
    rows = members_rows(fed)
    frozen = freeze_line(fed, clock)
    if output != "table":
        return CommandResult(stdout=dump_rows(rows, output),
                             messages=(frozen,) if frozen else ())
    table = [MEMBER_COLUMNS] + [[
        r["name"], r["cloud"], r["url"], weight_cell(r["weight"]), share_cell(r["share"]),
        "yes" if r["prime"] else "no",
        _ramp_cell(r["name"], r["ramp"]),
    ] for r in rows]
    lines = aligned_lines(table)
    if frozen:
        lines += ["", frozen]
    return CommandResult(stdout="\n".join(lines) + "\n")
