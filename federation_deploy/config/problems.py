"""The Checker: collects every problem of one config file, each with file:line:key, instead of
stopping at the first; and the small helpers its messages use."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from federation_deploy.config.schema import Key, Section
from federation_deploy.errors import Problem
from federation_deploy.yamlio import SEXAGESIMAL, LocatedMap, line_of, retyped_key, to_plain

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

    def section(self, root: LocatedMap, name: str, section: Section) -> LocatedMap | None:
        """The top-level block `name:` when present (None when absent, empty or not a mapping,
        which is a problem), its unknown and missing keys checked."""
        if name not in root or root[name] is None:
            return None
        node = self.mapping(root[name], root, name, name)
        if node is not None:
            self.keys(node, name, section)
        return node

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

    def retyped_name(self, node: LocatedMap, key: Any, keypath: str, what: str) -> bool:
        """Whether a name written as a mapping key is one YAML read as a boolean or a number
        (`no:` is false, `on:` true, `010:` 8, `1e3:` 1000): then said, with the fix, and the
        name is not used (it would be silently renamed)."""
        written = retyped_key(node, key)
        if written is None:
            return False
        self.add(node, key, join_keypath(keypath, written),
                 f"{what} {written!r} is read by YAML as {key!r}, not as a name: quote it "
                 f"(\"{written}\":)")
        return True

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
                     f"expected {key.expected}, got {kind_of(value)}{sexagesimal_note(value)}"
                     f"{quote_note(key, value)}")
            return default
        return to_plain(value)


_P = ParamSpec("_P")
_R = TypeVar("_R")

# The real paths known within one load (one_resolution), by the path as given (absolute):
# each distinct path is resolved once, its directories shared by all their files. None outside
# a load: nothing is kept between loads (a link changed between two loads, or two tests, is
# seen by the next one).
_REAL_PATHS: contextvars.ContextVar[dict[str, Path | None] | None] = contextvars.ContextVar(
    "real_paths", default=None)


@contextlib.contextmanager
def _one_resolution_scope() -> Iterator[None]:
    if _REAL_PATHS.get() is not None:  # nested: the outer load's paths are still current
        yield
        return
    token = _REAL_PATHS.set({})
    try:
        yield
    finally:
        _REAL_PATHS.reset(token)


def one_resolution(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run function as one load: real_path resolves each distinct path once during it (a
    federation of 2,000 members names its values directory 2,000 times; resolving it whole
    per file was ~84,000 Path.resolve calls in validate)."""
    @functools.wraps(function)
    def within_one_resolution(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _one_resolution_scope():
            return function(*args, **kwargs)
    return within_one_resolution


def real_path(path: Path) -> Path | None:
    """path with every symbolic link resolved; None for a link loop or an unreadable part."""
    known = _REAL_PATHS.get()
    if known is None:
        return _resolve(path)
    text = os.fspath(path)
    if "\0" in text:  # as Path.resolve refuses it
        return None
    if not os.path.isabs(text):
        text = os.path.join(os.getcwd(), text)
    return _real_path_once(text, known)


def _resolve(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return None


def _real_path_once(text: str, known: dict[str, Path | None]) -> Path | None:
    """Path.resolve's answer, component by component: the parent's real path (once per load),
    then this name: `..` is the real parent's parent (as realpath does), a name that is a
    link (one lstat tells) is resolved whole, any other name is itself."""
    if text in known:
        return known[text]
    head, name = os.path.split(text)
    parent = _real_path_once(head, known) if name else Path(text)  # "/" is its own parent
    real: Path | None
    if parent is None or not name:  # under a link loop or an unreadable part, or the root
        real = parent
    elif name == "..":
        real = parent.parent
    elif name == ".":
        real = parent
    else:
        candidate = parent / name
        try:
            is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
        except OSError:  # missing or unreadable: realpath keeps the name as it is
            is_link = False
        real = _resolve(candidate) if is_link else candidate
    known[text] = real
    return real


def inside(root: Path, path: Path) -> bool:
    """Whether path, every link resolved, is root or below it (root's own links resolved):
    the one confinement of the files config names (values files and globs, kubeconfigs,
    chart directories, CRDs, the stand-in, terraform stacks). A link that leads out (to
    /etc, to another repository) is outside, whatever the path it is listed by."""
    base, real = real_path(root), real_path(path)
    return base is not None and real is not None and below(real, base)


def below(real: Path, base: Path) -> bool:
    """real.is_relative_to(base) for two real (absolute, normalised) paths, as strings: it is
    asked for every values file of every member, and PurePath.relative_to builds paths."""
    real_text, base_text = str(real), str(base)
    return real_text == base_text or real_text.startswith(base_text.rstrip("/") + "/")


def confined(root: Path, relative: str) -> bool:
    """Whether root/relative (links resolved) stays inside root: config names files below a
    root, never elsewhere (../../etc/passwd, an absolute path, a link out)."""
    try:
        return inside(root, root / relative)
    except (TypeError, ValueError):
        return False


def sexagesimal_note(value: Any) -> str:
    """Why 1:20 is no number here: federation.yaml is read as helm reads YAML (yamlio), where
    a YAML 1.1 sexagesimal number is a string; PyYAML would have made it 80."""
    if not isinstance(value, str) or not SEXAGESIMAL.fullmatch(value):
        return ""
    return (" (a sexagesimal number is refused: YAML readers disagree on it, helm reads the "
            "string; write the number itself, or quote it if a string is meant)")


def join_keypath(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def quote_note(key: Key, value: Any) -> str:
    """For a string key given a boolean or a number (`name: no` is false, `name: 010` is 8):
    how to write the string meant."""
    wants = key.rule.json.get("type")
    wants_string = wants == "string" or (isinstance(wants, list) and "string" in wants)
    if wants_string and isinstance(value, bool | int | float):
        return " (YAML reads an unquoted yes/no/on/off/y/n or a number so: quote it)"
    return ""


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


def display_path(path: Path) -> str:
    """path relative to the working directory when below it, for messages: the file as it is
    listed (its directory's links resolved, not its own: a link loop has no real path). Within
    a load each directory is resolved once (real_path), as for confinement."""
    parent, cwd = real_path(path.absolute().parent), real_path(Path.cwd())
    if parent is None or cwd is None:
        return str(path)
    try:
        return str((parent / path.name).relative_to(cwd))
    except ValueError:
        return str(path)
