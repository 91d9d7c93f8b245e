"""The `charts:` table adopt writes: a chart several releases pin alike, pinned once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def shared_chart_pins(members: Mapping[str, Any]) -> dict[str, Any]:
    """The `charts:` table: each chart that several releases use with the same chart, repo
    and version, pinned once; those releases (changed in place) name it instead. A chart
    only one release uses stays pinned on that release (a table of one says nothing)."""
    groups: dict[tuple[str, str | None, str], list[dict[str, Any]]] = {}
    for member in members.values():
        for release in member.get("releases", []):
            chart, version = release.get("chart"), release.get("version")
            if not isinstance(chart, str) or chart.startswith("./") or not version:
                continue  # a local directory's version is its Chart.yaml's
            groups.setdefault((chart, release.get("repo"), version), []).append(release)
    shared = {key: releases for key, releases in groups.items() if len(releases) > 1}
    # a chart a release still pins itself must not also be a table name: the loader would
    # resolve that release against the table
    taken = {key[0] for key in groups if key not in shared}
    table: dict[str, Any] = {}
    for (chart, repo, version), releases in shared.items():
        # the name releases already use (cert-manager), else the chart's own last segment
        names = {r["name"] for r in releases}
        base = names.pop() if len(names) == 1 else chart.rstrip("/").rsplit("/", 1)[-1]
        name, n = base, 2
        while name in table or name in taken:  # e.g. the same chart at two versions
            name, n = f"{base}-{n}", n + 1
        pin: dict[str, Any] = {}
        if chart != name:  # the table's key is the chart's name unless said otherwise
            pin["chart"] = chart
        if repo:
            pin["repo"] = repo
        pin["version"] = version
        table[name] = pin
        for release in releases:
            release.pop("repo", None)
            release.pop("version", None)
            release["chart"] = name
    return table
