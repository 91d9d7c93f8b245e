"""All YAML in one place: fast located reading for validation, round-trip atomic rewriting."""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import math
import os
import re
import struct
import tempfile
from decimal import Decimal
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
    yaml.representer.add_representer(float, _represent_decimal)
    return yaml


def _represent_decimal(representer: Any, value: float) -> Any:
    """A float the tool writes (a weight: 0.00001) as a plain decimal, never 1e-05: every
    reader (people, PyYAML, helm) reads it back as the same number."""
    if not math.isfinite(value):
        return representer.represent_float(value)
    text = format(Decimal(repr(value)), "f")
    return representer.represent_scalar("tag:yaml.org,2002:float",
                                        text if "." in text else text + ".0")


class LocatedMap(dict[Any, Any]):
    """A mapping read from YAML that remembers the 1-based line of itself and of each key,
    and the keys YAML read as something other than a string (`no:` is false, `010:` is 8)
    with the text they were written as (retyped_key)."""

    line: int | None = None
    lines: dict[Any, int]
    retyped: dict[str, str] = {}  # noqa: RUF012 - replaced per instance, never mutated here


def retyped_key(node: Any, key: Any) -> str | None:
    """The text a mapping key was written as when YAML read it as a boolean, a number or a
    date (helm does too: `no:` is the key "false"); None for a key written as a string. A name
    (a member's, a release's, a chart's) written so is not the name its author meant."""
    if isinstance(node, LocatedMap):
        return node.retyped.get(key)
    return None


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


# helm reads values with sigs.k8s.io/yaml: go-yaml v2 (YAML 1.1 as Go does it), then JSON.
# Its plain scalars are NOT PyYAML's: no sexagesimal numbers (12:30 is a string), y/n/Y/N are
# booleans, 1e3, 1e+3 and 0o17 are numbers, 08 is the float 8. go_scalar is that reading.
_GO_BOOLS = {**dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On",
                              "ON"), True),
             **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off",
                              "Off", "OFF"), False)}
_GO_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_GO_SPECIAL_FLOATS = {**dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"),
                                      math.inf),
                      **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
                      **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan)}
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_UNDERSCORES_OK = re.compile(r"[^_]*([0-9]_(?=[0-9])[^_]*)*")
_GO_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}
# A YAML 1.1 sexagesimal number (PyYAML reads 1:20 as 80; helm reads the string "1:20").
SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")


def _go_parse_int(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 0, 64), then ParseUint (no sign): None when both fail."""
    sign, body = (text[0], text[1:]) if text[:1] in "+-" else ("", text)
    base, digits = 10, body
    lower = body[:2].lower()
    if lower in ("0x", "0o", "0b"):
        base, digits = {"0x": 16, "0o": 8, "0b": 2}[lower], body[2:]
    elif len(body) > 1 and body[0] == "0":
        base, digits = 8, body[1:]
    if not digits or any(c not in _GO_DIGITS[base] for c in digits):
        return None
    value = int(digits, base)
    if sign == "-":
        value = -value
    if -(2 ** 63) <= value < 2 ** 63 or (not sign and 0 <= value < 2 ** 64):
        return value
    return None


def go_scalar(text: str) -> Any:
    """A plain (unquoted) YAML scalar as helm's go-yaml v2 reads it: None, bool, int, float or
    the string itself (dates and times stay strings, as helm keeps them)."""
    if text in _GO_NULLS:
        return None
    if text in _GO_BOOLS:
        return _GO_BOOLS[text]
    if text in _GO_SPECIAL_FLOATS:
        return _GO_SPECIAL_FLOATS[text]
    first = text[0]
    if first == ".":
        # strconv.ParseFloat as it is: underscores only between digits (Go's syntax)
        if _GO_UNDERSCORES_OK.fullmatch(text) and _GO_FLOAT.fullmatch(text.replace("_", "")):
            return _go_float(text.replace("_", ""))
        return text
    if first in "+-0123456789":
        plain = text.replace("_", "")
        number = _go_parse_int(plain)
        if number is not None:
            return number
        if _GO_FLOAT.fullmatch(plain):
            return _go_float(plain)
    return text


def _go_float(text: str) -> float | str:
    """strconv.ParseFloat: out of range (1e400) is an error there, and go-yaml keeps the
    string."""
    value = float(text)
    return text if math.isinf(value) else value


def go_key(key: Any) -> str:
    """A mapping key as sigs.k8s.io/yaml turns it into a JSON key (helm's values keys)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return _go_float32_g(key)
    return str(key)


def _go_float32_g(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32): the shortest float32 digits, %e from 1e6."""
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if math.isnan(value):
        return ".nan"
    try:
        single = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        single = math.copysign(math.inf, value)
    if math.isinf(single):  # beyond float32: Go's float32 conversion makes it infinite
        return ".inf" if single > 0 else "-.inf"
    text = f"{single:.8e}"
    for digits in range(9):
        text = f"{single:.{digits}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            break
    mantissa, exponent = text.split("e")
    exp = int(exponent)
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    if exp < -4 or exp >= 6:  # Go: shortest precision decides at 6
        return f"{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    text = format(Decimal(f"{mantissa}e{exp}"), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


_GO_TAG = "tag:federation-deploy,2026:go-plain-scalar"


class _LocatedLoader(_BaseLoader):
    """libyaml's C parser (10x the pure-Python one on large federations), building
    LocatedMap/LocatedList, with plain scalars read as helm reads them (go_scalar) and keys
    as helm's JSON keys (go_key). The composed document is measured with its aliases expanded
    before anything is built from it."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return "tag:yaml.org,2002:merge" if value == "<<" else _GO_TAG
        return super().resolve(kind, value, implicit)

    # set per document by loads_located: without an anchor ("&") there can be no alias, and
    # measuring the expansion (a fifth of the loading time of a large federation) is skipped
    may_alias = True

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


_MERGE = "tag:yaml.org,2002:merge"


def _construct_map(loader: Any, node: Any) -> LocatedMap:
    """A mapping as helm reads it (go-yaml v2), keys in order: an explicit key sets its value,
    a merge key (`<<: *base`, `<<: [*a, *b]`) sets every key of what it merges, each
    overriding what came before; the same explicit key twice is refused (helm would keep the
    last one silently)."""
    data = LocatedMap()
    data.line = node.start_mark.line + 1
    data.lines = {}
    explicit: set[str] = set()
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            _merge(loader, data, key_node, value_node)
            continue
        key = loader.construct_object(key_node, deep=True)
        if key is None:
            # helm: "unsupported map key of type: <nil>"
            raise yaml.constructor.ConstructorError(
                None, None, "a null mapping key (helm refuses it; quote it: \"null\")",
                key_node.start_mark)
        if not isinstance(key, str | int | float | bool):
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be scalars", key_node.start_mark)
        if not isinstance(key, str):
            written = str(key_node.value)
            key = go_key(key)
            if data.retyped is LocatedMap.retyped:
                data.retyped = {}
            data.retyped[key] = written
        elif key in data.retyped:  # an explicit string key replacing a merged retyped one
            del data.retyped[key]
        if key in explicit:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        explicit.add(key)
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = key_node.start_mark.line + 1
    return data


def _merge(loader: Any, data: LocatedMap, key_node: Any, value_node: Any) -> None:
    """`<<: value` into data as go-yaml v2 does it: a mapping's keys, or each mapping of a
    list's, the earlier ones of the list taking precedence."""
    if isinstance(value_node, yaml.MappingNode):
        merged = [value_node]
    elif isinstance(value_node, yaml.SequenceNode) and all(
            isinstance(item, yaml.MappingNode) for item in value_node.value):
        merged = list(reversed(value_node.value))
    else:
        raise yaml.constructor.ConstructorError(
            None, None, "a merge key (<<) needs a mapping or a list of mappings",
            key_node.start_mark)
    for item in merged:
        source = loader.construct_object(item, deep=True)
        for key, value in source.items():
            data[key] = value
            data.lines[key] = source.lines.get(key, key_node.start_mark.line + 1)
            if key in source.retyped:
                if data.retyped is LocatedMap.retyped:
                    data.retyped = {}
                data.retyped[key] = source.retyped[key]
            elif key in data.retyped:
                del data.retyped[key]


def _construct_seq(loader: Any, node: Any) -> LocatedList:
    data = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    data.line = node.start_mark.line + 1
    data.lines = [child.start_mark.line + 1 for child in node.value]
    return data


def _construct_str(loader: Any, node: Any) -> str:
    return str(loader.construct_scalar(node))


def _construct_binary(loader: Any, node: Any) -> str:
    """!!binary as helm reads it (go-yaml v2): the decoded bytes as a string (JSON then has
    U+FFFD for what is not UTF-8, as Go's encoder writes it), never Python bytes."""
    text = "".join(str(loader.construct_scalar(node)).split())
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise yaml.constructor.ConstructorError(
            None, None, "!!binary that is not base64", node.start_mark) from None
    return raw.decode("utf-8", errors="replace")


def _construct_collection(loader: Any, node: Any) -> LocatedMap | LocatedList:
    """!!set, !!omap, !!pairs (and !!map, !!seq) as helm reads them (go-yaml v2 goes by the
    node, not its tag): a mapping is a map (a !!set's values are null), a list a list (an
    !!omap or !!pairs: a list of single-key maps)."""
    if isinstance(node, yaml.MappingNode):
        return _construct_map(loader, node)
    if isinstance(node, yaml.SequenceNode):
        return _construct_seq(loader, node)
    raise yaml.constructor.ConstructorError(
        None, None, f"!!{node.tag.rsplit(':', 1)[-1]} on a single value (expected a mapping or "
        "a list)", node.start_mark)


for _tag in ("map", "seq", "set", "omap", "pairs"):
    _LocatedLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _construct_collection)
_LocatedLoader.add_constructor("tag:yaml.org,2002:binary", _construct_binary)
_LocatedLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_str)
_LocatedLoader.add_constructor(_GO_TAG, lambda loader, node: go_scalar(node.value))


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
