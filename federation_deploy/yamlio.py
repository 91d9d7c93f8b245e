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

from federation_deploy.errors import ConfigError


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


# How many values a document may hold once its aliases are expanded. Readers share an alias's
# object, but rendering copies and merges it: a "billion laughs" of nested aliases would grow
# without bound there. Real values files hold a few thousand values.
MAX_EXPANDED_VALUES = 100_000


class AliasBombError(Exception):
    """A document whose aliases expand beyond MAX_EXPANDED_VALUES, or refer to themselves."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


class _LocatedLoader(_BaseLoader):
    """libyaml's C parser (10x the pure-Python one on large federations), building
    LocatedMap/LocatedList; dates stay strings, as Helm sees them. The composed document is
    measured with its aliases expanded before anything is built from it."""

    # set per document by loads_located: without an anchor ("&") there can be no alias, and
    # measuring the expansion (a fifth of the loading time of a large federation) is skipped
    may_alias = True

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._scalar_tags: dict[tuple[str, Any], str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """The tag of a node, a scalar's remembered per value: a federation repeats its keys
        and values thousands of times, and each look-up runs regular expressions."""
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._scalar_tags.get(key)
        if tag is None:
            tag = self._scalar_tags[key] = super().resolve(kind, value, implicit)
        return tag

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        if self.may_alias:
            _check_expansion(node)
        return self.construct_document(node)


def _check_expansion(root: Any) -> None:
    """Raise AliasBombError when the document, aliases expanded, exceeds the cap or loops.

    Each node's expanded size is computed once (memoised by identity), so a small file of
    nested aliases costs as little to measure as it is large on disk; no recursion, so a deeply
    nested document cannot overflow the stack here."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        ident = id(node)
        if ident in sizes:
            continue
        kids = _children(node)
        if not children_done:
            if ident in in_progress:
                raise AliasBombError(node.start_mark.line + 1,
                                     "a YAML alias refers to a node containing itself")
            in_progress.add(ident)
            stack.append((node, True))
            for kid in kids:
                if id(kid) in in_progress:
                    raise AliasBombError(node.start_mark.line + 1,
                                         "a YAML alias refers to a node containing itself")
                if id(kid) not in sizes:
                    stack.append((kid, False))
            continue
        in_progress.discard(ident)
        size = 1 + sum(sizes[id(kid)] for kid in kids)
        # only aliases amplify: what this subtree holds beyond the distinct nodes seen so far
        # came from them (a 150,000-key file without aliases is as large on disk as in memory)
        if size - len(sizes) > MAX_EXPANDED_VALUES:
            raise AliasBombError(
                node.start_mark.line + 1,
                f"YAML aliases expand this to more than {MAX_EXPANDED_VALUES} values "
                "(an alias bomb?); write the values out or use fewer nested aliases")
        sizes[ident] = size


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


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
    return loads_located(read_config_text(path, shown), shown)


def read_config_text(path: Path, display: str | None = None) -> str:
    """A config file's text; ConfigError (file, line and byte offset) when it is missing,
    unreadable or not UTF-8."""
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError.single(shown, None, "", "file not found") from None
    except OSError as exc:
        raise ConfigError.single(shown, None, "", f"cannot read: {exc.strerror}") from None
    return decode_utf8(raw, shown)


def decode_utf8(raw: bytes, display: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        byte = raw[exc.start:exc.start + 1].hex()
        raise ConfigError.single(
            display, line, "", f"not UTF-8: byte 0x{byte} at byte offset {exc.start} "
            "cannot be decoded (save the file as UTF-8)") from None


def _load(text: str) -> Any:
    """yaml.load(text, Loader=_LocatedLoader), told whether the text can hold an alias."""
    loader = _LocatedLoader(text)
    loader.may_alias = "&" in text
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def loads_located(text: str, display: str) -> Any:
    try:
        return _load(text)
    except AliasBombError as exc:
        raise ConfigError.single(display, exc.line, "", str(exc)) from None
    except RecursionError:
        raise ConfigError.single(display, None, "", "YAML nested too deeply") from None
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
