"""All YAML in one place: fast located reading for validation, round-trip atomic rewriting."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .errors import ConfigError


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


class LocatedMap(dict[Any, Any]):
    """A mapping read from YAML that remembers the 1-based line of itself and of each key."""

    line: int | None = None
    lines: dict[Any, int]


class LocatedList(list[Any]):
    """A sequence read from YAML that remembers the line of itself and of each item."""

    line: int | None = None
    lines: list[int]


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LocatedLoader(_BaseLoader):
    """libyaml's C parser (10x the pure-Python one on large federations), building
    LocatedMap/LocatedList; dates stay strings, as Helm sees them."""


def _construct_map(loader: Any, node: Any) -> LocatedMap:
    data = LocatedMap()
    data.line = node.start_mark.line + 1
    data.lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be scalars", key_node.start_mark)
        if key in data.lines:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = key_node.start_mark.line + 1
    return data


def _construct_seq(loader: Any, node: Any) -> LocatedList:
    data = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    data.line = node.start_mark.line + 1
    data.lines = [child.start_mark.line + 1 for child in node.value]
    return data


def _construct_str(loader: Any, node: Any) -> str:
    return str(loader.construct_scalar(node))


_LocatedLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LocatedLoader.add_constructor("tag:yaml.org,2002:omap", _construct_map)
_LocatedLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_LocatedLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_str)


def load_located(path: Path, display: str | None = None) -> Any:
    """Load a YAML file keeping line numbers (LocatedMap/LocatedList).

    Raises ConfigError naming the file and line on a syntax error or a missing file.
    """
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.single(shown, None, "", "file not found") from None
    except OSError as exc:
        raise ConfigError.single(shown, None, "", f"cannot read: {exc.strerror}") from None
    return loads_located(text, shown)


def loads_located(text: str, display: str) -> Any:
    try:
        return yaml.load(text, Loader=_LocatedLoader)  # noqa: S506 - a safe loader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError.single(display, line, "", f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError.single(display, None, "", f"YAML error: {exc}") from None


def line_of(node: Any, key: Any = None) -> int | None:
    """1-based line of a mapping key or list item (or of the node itself) when known."""
    try:
        if key is not None and isinstance(node, LocatedMap):
            return node.lines[key]
        if key is not None and isinstance(node, LocatedList):
            return node.lines[key]
        if isinstance(node, LocatedMap | LocatedList):
            return node.line
    except (KeyError, IndexError, TypeError):
        pass
    return None


def to_plain(node: Any) -> Any:
    """Strip ruamel's comment-carrying types down to dict/list/scalars."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


class _PlainDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Output dumper: multi-line strings as literal blocks, as people write them in values."""


def _represent_str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value and value.strip("\n") != "" else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_PlainDumper.add_representer(str, _represent_str)


def dump_plain(data: Any) -> str:
    """Block-style YAML for output (render); plain data in, stable text out, keys in order."""
    text: str = yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=4096)
    return text


def load_round_trip(path: Path) -> Any:
    return _round_trip().load(path.read_text(encoding="utf-8"))


def dumps_round_trip(data: Any) -> str:
    buf = io.StringIO()
    _round_trip().dump(data, buf)
    return buf.getvalue()


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    """Write via a temp file in the same directory and rename: readers never see half a file."""
    path = Path(path)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_round_trip(path: Path, data: Any) -> None:
    atomic_write_text(path, dumps_round_trip(data))


def commented(data: Any, comments: dict[tuple[str, ...], str], path: tuple[str, ...] = (),
              depth: int = 0) -> Any:
    """Plain data as ruamel round-trip nodes, with a comment above each key whose path
    (("members", "prod") ...) is in comments: for files the tool writes for people to edit."""
    if isinstance(data, dict):
        node = CommentedMap()
        for key, value in data.items():
            node[key] = commented(value, comments, (*path, str(key)), depth + 1)
            text = comments.get((*path, str(key)))
            if text:
                node.yaml_set_comment_before_after_key(key, before=text, indent=2 * depth)
        return node
    if isinstance(data, list):
        seq = CommentedSeq(commented(v, comments, path, depth + 1) for v in data)
        if data and all(isinstance(v, str) for v in data) and len(data) <= 12 \
                and sum(len(v) for v in data) < 80:
            seq.fa.set_flow_style()  # short lists of names read best on one line
        return seq
    return data


def dumps_commented(data: Any, comments: dict[tuple[str, ...], str], header: str = "") -> str:
    """Round-trip YAML text of plain data with comments (see commented), header first."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    head = "\n".join(lines) + "\n\n" if lines else ""
    return head + dumps_round_trip(commented(data, comments))
