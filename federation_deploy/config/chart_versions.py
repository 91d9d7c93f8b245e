"""Chart versions: semver order, a repository's index.yaml, and the `charts outdated` report."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import semver

from federation_deploy.traffic.formatting import aligned_lines


def parse_version(text: str) -> semver.Version | None:
    """semver of a chart version (cert-manager's leading v allowed); None when it is not one."""
    try:
        return semver.Version.parse(text[1:] if text.startswith("v") else text)
    except (ValueError, TypeError):
        return None


def is_dev(version: str) -> bool:
    """A pre-release (1.0.0-0.dev.git.3170.h4e5ff4a, 2.0.0-beta.1): offered only to pins that
    are pre-releases themselves, as mybinder.org follows binderhub's dev builds."""
    parsed = parse_version(version)
    return parsed is not None and parsed.prerelease is not None


def newest_version(candidates: Iterable[str], pinned: str) -> str | None:
    """The highest of candidates by semver precedence, dev versions only for a dev pin;
    None when no candidate qualifies. Returned as the repository spells it."""
    with_dev = is_dev(pinned)
    best: tuple[semver.Version, str] | None = None
    for text in candidates:
        parsed = parse_version(text)
        if parsed is None or (parsed.prerelease is not None and not with_dev):
            continue
        if best is None or parsed > best[0]:
            best = (parsed, text)
    return None if best is None else best[1]


def is_newer(candidate: str, pinned: str) -> bool:
    new, old = parse_version(candidate), parse_version(pinned)
    return new is not None and old is not None and new > old


@dataclass(frozen=True)
class IndexEntry:
    """One version of a chart in a repository's index.yaml."""

    version: str
    sources: tuple[str, ...] = ()
    home: str | None = None


def index_entries(document: Any, chart: str) -> list[IndexEntry]:
    """The versions of chart listed by an index.yaml (parsed); ValueError saying what is
    wrong when the document is not an index or does not list the chart."""
    if not isinstance(document, Mapping) or not isinstance(document.get("entries"), Mapping):
        raise ValueError("not a helm repository index (no `entries:` mapping)")
    listed = document["entries"].get(chart)
    if not isinstance(listed, list) or not listed:
        raise ValueError(f"the repository has no chart {chart!r}")
    entries = []
    for item in listed:
        if not isinstance(item, Mapping) or not isinstance(item.get("version"), str):
            continue
        sources = item.get("sources")
        home = item.get("home")
        entries.append(IndexEntry(
            version=item["version"],
            sources=tuple(s for s in sources if isinstance(s, str))
            if isinstance(sources, list) else (),
            home=home if isinstance(home, str) else None,
        ))
    return entries


# --------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class ChartStatus:
    """One pinned chart: its pin, the newest version found (or why none was), and the members
    that pin their own version instead (member -> version)."""

    name: str
    chart: str
    source: str  # the repository URL, oci:// reference, or "shipped with federation-deploy"
    pinned: str
    newest: str | None = None
    error: str | None = None
    changelog: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)

    @property
    def outdated(self) -> bool:
        return self.error is None and self.newest is not None and is_newer(self.newest,
                                                                           self.pinned)

    @property
    def state(self) -> str:
        if self.error is not None:
            return "error"
        return "outdated" if self.outdated else "up to date"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "chart": self.chart, "source": self.source,
            "pinned": self.pinned, "newest": self.newest,
            # null, not false, when the repository could not be asked: nobody knows
            "outdated": None if self.error is not None else self.outdated,
            "error": self.error, "changelog": self.changelog, "overrides": dict(self.overrides),
        }


def report_json(statuses: Sequence[ChartStatus]) -> str:
    return json.dumps([s.as_json() for s in statuses], indent=2)


# The error column of the table is cut to this width; `-o json` has the whole text.
ERROR_WIDTH = 60


def short_error(text: str, width: int = ERROR_WIDTH) -> str:
    """An error for a table cell: its first line, without the library's detail after
    `: ` (`cannot reach URL: HTTPConnectionPool(...)` -> `cannot reach URL`), at most width."""
    first = text.splitlines()[0] if text else ""
    if len(first) > width:
        first = first.split(": ", 1)[0]
    return first if len(first) <= width else first[:width - 3] + "..."


def report_table(statuses: Sequence[ChartStatus]) -> str:
    # lower-case headers like `members` and `traffic`; the error column last (it is long)
    rows = [["chart", "pinned", "newest", "state", "overrides", "error"]]
    for s in statuses:
        overrides = ", ".join(f"{m}={v}" for m, v in s.overrides.items()) or "-"
        error = "-" if s.error is None else short_error(s.error)
        rows.append([s.name, s.pinned, s.newest or "-", s.state, overrides, error])
    return "\n".join(aligned_lines(rows)) + "\n"
