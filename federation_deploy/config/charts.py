"""The top-level `charts:` table: chart pins declared once, and releases resolved against it."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from federation_deploy.config import schema
from federation_deploy.config.model import CHARTS_DIR, PACKAGE_CHART_PREFIX, ChartPin, Location
from federation_deploy.config.schema import EXACT_VERSION, shown_url, url_problem
from federation_deploy.yamlio import LocatedMap, line_of

if TYPE_CHECKING:  # the loader imports this module; the Checker is only a type here
    from federation_deploy.config.problems import Checker


@dataclass(frozen=True)
class ChartTable:
    """The loaded pins, and every name the table declares (a declared name whose entry is
    invalid is already reported: releases naming it say nothing more)."""

    pins: Mapping[str, ChartPin]
    declared: frozenset[str]
    # the line of every declared name, valid or not: the unused-entry warning names it
    lines: Mapping[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedChart:
    chart: str
    repo: str | None
    version: str
    pin: str | None
    overrides_pin: bool


def load_chart_table(check: Checker, root: LocatedMap) -> ChartTable:
    if "charts" not in root:
        return ChartTable({}, frozenset())
    node = check.mapping(root["charts"], root, "charts", "charts")
    if node is None:
        return ChartTable({}, frozenset())
    section = schema.CHART
    pins: dict[str, ChartPin] = {}
    for name, item in node.items():
        kp = f"charts.{name}"
        if check.retyped_name(node, name, "charts", "the chart name"):
            continue
        if not isinstance(name, str) or not name:
            check.add(node, name, kp, "chart names are non-empty strings")
            continue
        entry = check.mapping(item, node, name, kp)
        if entry is None:
            continue
        n_before = len(check.problems)
        check.keys(entry, kp, section)
        chart = check.value(entry, kp, section["chart"]) or name
        repo = check.value(entry, kp, section["repo"])
        version = check.value(entry, kp, section["version"])
        changelog = check.value(entry, kp, section["changelog"])
        if changelog and (problem := url_problem(changelog)):
            check.add(entry, "changelog", f"{kp}.changelog",
                      f"{problem}, got {shown_url(changelog)!r}")
        check_chart_source(check, entry, kp, chart, repo, version)
        if len(check.problems) == n_before:
            pins[name] = ChartPin(
                name=name, chart=chart, version=version, repo=repo, changelog=changelog,
                location=Location(check.file, line_of(node, name)),
                version_location=Location(check.file, line_of(entry, "version")),
            )
    return ChartTable(pins, frozenset(str(n) for n in node),
                      {str(n): line_of(node, n) for n in node})


def release_chart_names(root: LocatedMap) -> set[str]:
    """Every `chart:` a release of any member names, read from the document itself: releases
    that failed to load still count (their problem is reported once, where it is)."""
    names: set[str] = set()
    members = root.get("members")
    for member in members.values() if isinstance(members, Mapping) else ():
        releases = member.get("releases") if isinstance(member, Mapping) else None
        for release in releases if isinstance(releases, list) else ():
            if isinstance(release, Mapping) and isinstance(release.get("chart"), str):
                names.add(release["chart"])
    return names


def unused_chart_warnings(table: ChartTable, file: str, used: set[str]) -> list[str]:
    """`charts:` entries no release names: often a typo of the name releases use."""
    warnings = []
    for name in sorted(table.declared - used):
        line = table.lines.get(name)
        where = f"{file}:{line}" if line else file
        close = difflib.get_close_matches(name, sorted(used - table.declared), n=1)
        hint = f" (did you mean {close[0]!r}, which releases name?)" if close else ""
        warnings.append(f"{where}: charts.{name}: no release uses this chart{hint}")
    return warnings


def check_chart_source(
    check: Checker, node: LocatedMap, kp: str, chart: str, repo: str | None, version: str
) -> None:
    """Where a chart comes from and its exact version: a name in a repository, oci://... or
    package:NAME (whose version is the one shipped)."""
    check_exact_version(check, node, kp)
    if chart.startswith(PACKAGE_CHART_PREFIX):
        chart_yaml = CHARTS_DIR / chart[len(PACKAGE_CHART_PREFIX):] / "Chart.yaml"
        if not chart_yaml.exists():
            check.add(node, "chart", f"{kp}.chart", f"no chart {chart!r} ships with this package")
        elif version:
            shipped = shipped_chart_version(chart_yaml)
            if shipped != version:
                check.add(node, "version", f"{kp}.version",
                          f"{chart} ships version {shipped}, config pins {version!r}")
        if repo:
            check.add(node, "repo", f"{kp}.repo", "a package: chart takes no repo")
    elif chart.startswith("oci://"):
        if repo:
            check.add(node, "repo", f"{kp}.repo", "an oci:// chart takes no repo")
    elif chart and not repo:
        check.add(node, None, f"{kp}.repo",
                  "required key is missing (charts by name need their repository URL; "
                  "or use oci://... or package:NAME)")
    elif repo and (problem := url_problem(repo)):
        check.add(node, "repo", f"{kp}.repo", f"{problem}, got {shown_url(repo)!r}")


def check_exact_version(check: Checker, node: LocatedMap, kp: str) -> None:
    value: Any = node.get("version")
    if isinstance(value, int | float) and not isinstance(value, bool):
        check.add(node, "version", f"{kp}.version",
                  f"expected an exact version as a quoted string, got {value!r}")
    elif isinstance(value, str) and value and not EXACT_VERSION.match(value):
        check.add(node, "version", f"{kp}.version",
                  f"chart versions must be pinned exactly (like 1.2.3), got {value!r}")


def resolve_release_chart(
    check: Checker, node: LocatedMap, kp: str, table: ChartTable, chart: str,
    repo: str | None, version: str,
) -> ResolvedChart | None:
    """A release's chart: the `charts:` entry it names (its own version overriding the pin),
    or a chart pinned on the release itself. None after reporting a problem."""
    if not chart:
        return None  # missing or invalid: already reported
    n_before = len(check.problems)
    if chart in table.declared:
        if repo:
            check.add(node, "repo", f"{kp}.repo",
                      f"chart {chart!r} comes from charts.{chart}, which pins its repository: "
                      "remove repo here")
        pin = table.pins.get(chart)
        if pin is None:
            return None  # the table's entry is invalid and already reported
        if "version" in node:
            check_exact_version(check, node, kp)
            if pin.package_chart is not None and version and version != pin.version:
                check.add(node, "version", f"{kp}.version",
                          f"{pin.chart} ships one version ({pin.version}): it cannot be "
                          "overridden per member")
        if len(check.problems) > n_before:
            return None
        return ResolvedChart(pin.chart, pin.repo, version or pin.version, pin.name,
                             overrides_pin=bool(version))
    is_reference = not (repo or chart.startswith((PACKAGE_CHART_PREFIX, "oci://")))
    if is_reference and table.declared:
        known = ", ".join(sorted(table.declared))
        close = difflib.get_close_matches(chart, sorted(table.declared), n=1)
        # the typo may be on either side: name the table's line too
        hint = (f"did you mean {close[0]!r} (charts.{close[0]}, line "
                f"{table.lines.get(close[0])})? " if close else "")
        check.add(node, "chart", f"{kp}.chart",
                  f"unknown chart {chart!r}: not in the charts: table (charts: {known}); "
                  f"{hint}name one of them, or pin it here with repo and version")
        return None
    if "version" not in node:
        check.add(node, None, f"{kp}.version",
                  "required key is missing (or name a chart of the charts: table)")
    check_chart_source(check, node, kp, chart, repo, version)
    if len(check.problems) > n_before:
        return None
    return ResolvedChart(chart, repo, version, None, False)


def shipped_chart_version(chart_yaml: Path) -> str:
    for line in chart_yaml.read_text(encoding="utf-8").splitlines():
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip().strip("\"'")
    return ""
