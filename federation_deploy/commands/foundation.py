"""Commands of the foundation: validate, members, render (pure data in, data out)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Federation, load_federation
from ..errors import ConfigError, Problem
from ..render import RenderedRelease, render_member
from ..shares import member_share, plain_number
from ..tables import aligned_lines
from ..yamlio import dump_plain


@dataclass(frozen=True)
class ValidationReport:
    members: int
    releases: int
    warnings: tuple[str, ...]


def validate(config_dir: Path) -> ValidationReport:
    """Load everything and check it; raise ConfigError listing every problem. Changes nothing."""
    fed = load_federation(config_dir)
    problems: list[Problem] = []
    problems += _terraform_pin_problems(fed)
    for member in fed.members.values():
        if member.deployable:
            # renders every layer, so a values file that cannot merge is caught here too
            render_member(fed, member.name)
    if problems:
        raise ConfigError(problems)
    return ValidationReport(
        members=len(fed.members),
        releases=sum(len(m.releases) for m in fed.members.values()),
        warnings=fed.warnings,
    )


def _terraform_pin_problems(fed: Federation) -> list[Problem]:
    from .terraform import check_terraform_pins

    return check_terraform_pins(fed)


def members_rows(fed: Federation) -> list[dict[str, Any]]:
    """One row per member: name, cloud, url, weight, share (% of launches), prime, routed."""
    rows = []
    for m in fed.members.values():
        share = member_share(fed, m)
        rows.append({
            "name": m.name,
            "cloud": m.cloud,
            "url": m.url,
            "weight": plain_number(round(m.weight, 6)) if m.routed else None,
            "share": None if share is None else round(share, 3),
            "prime": m.prime,
            "routed": m.routed,
            "ramp": None if m.ramp is None else f"{m.ramp.current_share:g}%",
        })
    return rows


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v)

    table = [columns] + [[cell(r.get(c)) for c in columns] for r in rows]
    return "\n".join(aligned_lines(table)) + "\n"


def render_documents(
    fed: Federation, member: str, releases: list[str] | None, show_secrets: bool
) -> list[tuple[RenderedRelease, str]]:
    """Each release's merged values as YAML text, headed by a comment naming member/release."""
    out = []
    for rendered in render_member(fed, member, releases):
        values = rendered.values if show_secrets else rendered.redacted()
        head = f"# member: {member}  release: {rendered.release.name}  " \
               f"chart: {rendered.release.chart}@{rendered.release.version}\n"
        body = dump_plain(values) if values else "{}\n"
        out.append((rendered, head + body))
    return out


def write_rendered(output_dir: Path, documents: list[tuple[RenderedRelease, str]]) -> list[Path]:
    """Write <release>.yaml files with mode 0600 (they may carry secrets)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rendered, text in documents:
        path = output_dir / f"{rendered.release.name}.yaml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(path, 0o600)  # an existing file keeps its old mode through O_TRUNC
        written.append(path)
    return written


def members_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2) + "\n"
