"""Advice at load (warnings, never errors): redirector hosts left in values files, and chart
directories whose dependencies have no Chart.lock."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from federation_deploy.config.model import Federation, Member
from federation_deploy.config.values import values_layers
from federation_deploy.yamlio import LocatedMap, line_of

REDIRECTOR_ADVICE = "weights live in federation.yaml now: delete this block"


def leftover_redirector_hosts(path_shown: str, data: Any) -> Iterator[str]:
    """`FILE:LINE: ...` for a federationRedirect.hosts block (with or without weights) that a
    values mapping still sets; the generated block replaces it."""
    block = data.get("federationRedirect") if isinstance(data, LocatedMap) else None
    if not isinstance(block, LocatedMap) or not isinstance(block.get("hosts"), LocatedMap):
        return
    hosts = block["hosts"]
    if not hosts:
        return  # `hosts: {}` (a chart default's shape) routes nowhere
    weighted = [str(n) for n, h in hosts.items() if isinstance(h, Mapping) and "weight" in h]
    what = f"federationRedirect.hosts ({', '.join(str(n) for n in hosts)}"
    what += f"; weights of {', '.join(weighted)})" if weighted else ")"
    yield (f"{path_shown}:{line_of(block, 'hosts')}: {what} is still set: {REDIRECTOR_ADVICE} "
           "(the block federation-deploy generates replaces it)")


def redirector_warnings(fed: Federation, display: Any) -> list[str]:
    """The values files of the redirector release that still set its hosts or weights."""
    member = fed.members.get(fed.redirector.member)
    release = next((r for r in member.releases if r.name == fed.redirector.release),
                   None) if member is not None else None
    if member is None or release is None:
        return []
    found: list[str] = []
    for layer in values_layers(fed, member, release):
        document = fed.values_documents.get(layer.path)
        if layer.missing is not None or not isinstance(document, LocatedMap):
            continue
        section = document if layer.whole else document.get(release.name)
        found += leftover_redirector_hosts(display(layer.path), section)
    return list(dict.fromkeys(found))


def has_unlocked_dependencies(directory: Path) -> bool:
    """A chart directory with dependencies and no Chart.lock."""
    if (directory / "Chart.lock").is_file():
        return False
    try:
        meta = yaml.safe_load((directory / "Chart.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False  # the loader reports an unreadable Chart.yaml
    return isinstance(meta, dict) and bool(meta.get("dependencies"))


def chart_lock_notes(members: Mapping[str, Member], display: Any) -> list[str]:
    """A note per chart directory whose dependencies no Chart.lock pins."""
    directories = dict.fromkeys(r.local_chart for m in members.values() for r in m.releases
                                if r.local_chart is not None)
    return [f"note: chart directory {display(d)} has dependencies but no Chart.lock: deploy "
            "resolves their versions from Chart.yaml's ranges at every run (in a private "
            "copy); `deploy --update-dependencies` writes a Chart.lock to commit"
            for d in directories if has_unlocked_dependencies(d)]
