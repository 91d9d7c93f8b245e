"""The one output vocabulary of members, traffic and ramp: cells of tables for people (weights,
shares as 60.00%), the same values typed alike in JSON and YAML, and aligned table text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from federation_deploy.config import RampState
from federation_deploy.progress import printable
from federation_deploy.yamlio import dump_plain

# -o of every command that prints rows
OUTPUT_FORMATS = ("table", "json", "yaml")


def aligned_lines(rows: Sequence[Sequence[str]]) -> list[str]:
    """One line per row (the first is the header), each column as wide as its widest cell;
    cells are free text made printable (a drain reason keeps to its cell)."""
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def share_cell(share: float | None) -> str:
    """A share of launches in a table: 60.00% (- when the member gets none by design)."""
    return "-" if share is None else f"{share:.2f}%"


def weight_cell(weight: float | None) -> str:
    return "-" if weight is None else f"{weight:g}"


def share_value(share: float | None) -> float | None:
    """A share of launches in JSON/YAML: percent as a float, 4 decimals."""
    return None if share is None else round(float(share), 4)


def weight_value(weight: Any) -> float | None:
    """A weight in JSON/YAML: always a float (60.0), whoever reported it (config, redirector)."""
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        return None
    return round(float(weight), 6)


def ramp_value(state: RampState | None) -> dict[str, Any] | None:
    """A ramp in progress in JSON/YAML, the same in members and traffic."""
    if state is None:
        return None
    return {
        "step": state.step,
        "steps": list(state.steps),
        "percent": state.current_share,
        "to_weight": state.to_weight,
        "hold": state.hold,
        "started": state.started,
        "last_healthy": state.last_healthy,
        "rolled_back": state.rolled_back,
        "inconclusive": state.inconclusive,
        "evidence": dict(state.evidence) if state.evidence else None,
    }


def paused_text(member: str, rolled_back: str | None, inconclusive: str | None = None) -> str:
    """A paused ramp (by a rollback, or for lack of evidence), said alike by traffic,
    members, `ramp --dry-run` and `ramp --advance`: since when and why, and the one command
    that restarts it."""
    why = (f"since a rollback ({printable(rolled_back)})" if rolled_back
           else f"for lack of evidence ({printable(inconclusive or '')})")
    return (f"paused {why}: the scheduled --advance leaves it "
            f"alone; `federation-deploy ramp {member}` restarts it, `--abort` ends it")


def dump_rows(rows: list[dict[str, Any]], output: str) -> str:
    """Rows as JSON (indented) or YAML (one document, a list of mappings)."""
    if output == "json":
        return json.dumps(rows, indent=2) + "\n"
    if output == "yaml":
        return dump_plain(rows) if rows else "[]\n"
    raise ValueError(f"not a data format: {output!r} (table is the caller's)")
