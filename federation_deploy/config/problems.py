"""The Checker: collects every problem of one config file, each with file:line:key, instead of
stopping at the first; and the small helpers its messages use."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from federation_deploy.config.schema import Key, Section
from federation_deploy.errors import Problem
from federation_deploy.yamlio import LocatedMap, line_of, to_plain

# The value() default when the caller does not override the key's own default.
_KEY_DEFAULT: Any = object()


class Checker:
    """Collects every problem of one file instead of stopping at the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, node: Any, key: Any, keypath: str, message: str) -> None:
        self.problems.append(Problem(self.file, line_of(node, key), keypath, message))

    def mapping(self, node: Any, parent: Any, key: Any, keypath: str) -> LocatedMap | None:
        if isinstance(node, LocatedMap):
            return node
        self.add(parent, key, keypath, f"expected a mapping, got {kind_of(node)}")
        return None

    def keys(self, node: LocatedMap, keypath: str, section: Section) -> None:
        """Unknown keys and missing required keys of a section."""
        allowed = section.allowed
        for key in node:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.add(node, key, join_keypath(keypath, str(key)),
                         f"unknown key (allowed: {hint})")
        for key in sorted(section.required - set(node)):
            self.add(node, None, join_keypath(keypath, key), "required key is missing")

    def value(self, node: LocatedMap, keypath: str, key: Key,
              default: Any = _KEY_DEFAULT) -> Any:
        """The key's plain value when present and valid by its rule; otherwise its default
        (the row's, unless the caller derives one, like health from url)."""
        if default is _KEY_DEFAULT:
            default = key.default
        if key.name not in node:
            return default
        value = node[key.name]
        if not key.rule.ok(value):
            self.add(node, key.name, join_keypath(keypath, key.name),
                     f"expected {key.expected}, got {kind_of(value)}")
            return default
        return to_plain(value)


def resolved(path: Path) -> Path:
    """path.resolve(), each directory resolved once for all its files (a federation of 2,000
    members has as many values files in one directory)."""
    if path.name in ("", ".", "..") or path.is_symlink():
        return path.resolve()
    return _resolved_dir(path.absolute().parent) / path.name


@functools.lru_cache(maxsize=64)
def _resolved_dir(path: Path) -> Path:
    return path.resolve()


def confined(root: Path, relative: str) -> bool:
    """Whether root/relative (links resolved) stays inside root: config names files below a
    root, never elsewhere (../../etc/passwd, an absolute path)."""
    base = root.resolve()
    try:
        return (base / relative).resolve().is_relative_to(base)
    except (OSError, ValueError):
        return False


def join_keypath(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def kind_of(value: Any, secret: bool = False) -> str:
    """What a value is, for messages; never the value itself when it came from a secrets file."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if secret:
        return f"a secret value ({type(value).__name__})"
    return f"{type(value).__name__} {value!r}"
