"""Member and stack names a test adds, chosen so that they cannot collide with what a maintainer
has already added to config/federation.yaml or terraform/ (issue 30: tests hard-coded `seabird`,
and broke the day a maintainer added a member of that name)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

# The name the README's steps and the tests use for "a new member", when it is free.
EXAMPLE = "seabird"


def taken_names(*roots: Path) -> set[str]:
    """Every member of each root's config/federation.yaml and every stack folder name under its
    terraform/<cloud>/ (a root is a repository, or a copy of one)."""
    taken: set[str] = set()
    for root in roots:
        federation = root / "config" / "federation.yaml"
        if federation.is_file():
            members = (yaml.safe_load(federation.read_text()) or {}).get("members") or {}
            taken.update(str(name) for name in members)
        taken.update(stack.name for stack in root.glob("terraform/*/*") if stack.is_dir())
        taken.update(path.stem for path in root.glob("config/values/*.yaml"))
    return taken


def fresh_name(taken: Iterable[str], preferred: str = EXAMPLE) -> str:
    """`preferred` when it is free, else `preferred2`, `preferred3`, ... (the first free)."""
    used = set(taken)
    if preferred not in used:
        return preferred
    number = 2
    while f"{preferred}{number}" in used:
        number += 1
    return f"{preferred}{number}"
