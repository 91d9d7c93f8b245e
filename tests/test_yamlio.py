"""YAML in one module: located reading, plain output, round-trip rewriting, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation_deploy.errors import ConfigError
from federation_deploy.yamlio import (
    LocatedList,
    LocatedMap,
    atomic_write_text,
    dump_plain,
    dumps_round_trip,
    line_of,
    load_located,
    load_round_trip,
    loads_located,
    to_plain,
    write_round_trip,
)

DOC = """\
# the federation
members:
  gke:
    weight: 60      # most launches
    url: 'https://gke.mybinder.org'
  ovh2:
    steps: [1, 5]
    since: 2024-05-01
"""


def test_located_reading_knows_lines() -> None:
    data = loads_located(DOC, "f.yaml")
    assert isinstance(data, LocatedMap) and data.line == 2
    gke = data["members"]["gke"]
    assert line_of(data["members"], "gke") == 3 and line_of(gke, "weight") == 4
    steps = data["members"]["ovh2"]["steps"]
    assert isinstance(steps, LocatedList) and line_of(steps, 1) == 7
    assert line_of(gke, "nope") is None and line_of("scalar") is None
    # dates stay strings, as Helm sees them
    assert data["members"]["ovh2"]["since"] == "2024-05-01"


def test_syntax_error_names_file_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        loads_located("a: 1\nb: [2\n", "bad.yaml")
    (problem,) = info.value.problems
    assert problem.file == "bad.yaml" and problem.line is not None
    assert "YAML syntax error" in problem.message


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="duplicate key 'a'"):
        loads_located("a: 1\na: 2\n", "dup.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_located(tmp_path / "nope.yaml", "nope.yaml")


def test_to_plain_and_dump_plain() -> None:
    plain = to_plain(loads_located(DOC, "f.yaml"))
    assert type(plain["members"]) is dict and type(plain["members"]["ovh2"]["steps"]) is list
    text = dump_plain({"b": 1, "a": {"script": "line 1\nline 2\n"}})
    assert text == "b: 1\na:\n  script: |\n    line 1\n    line 2\n"


def test_round_trip_keeps_comments_quotes_and_order(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(DOC)
    data = load_round_trip(path)
    data["members"]["gke"]["weight"] = 55
    write_round_trip(path, data)
    assert path.read_text() == DOC.replace("weight: 60 ", "weight: 55 ")
    assert dumps_round_trip(load_round_trip(path)) == path.read_text()


def test_atomic_write_keeps_mode_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and (path.stat().st_mode & 0o777) == 0o640
    atomic_write_text(tmp_path / "fresh.json", "x", mode=0o600)
    assert ((tmp_path / "fresh.json").stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "fresh.json"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        atomic_write_text(path, 42)  # type: ignore[arg-type]  # the write fails half-way
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


@pytest.mark.slow  # a large document (seconds to parse)
def test_a_large_document_without_alias_amplification_is_not_an_alias_bomb() -> None:
    """The cap counts what aliases add beyond the distinct values: 150,000 plain keys (and a
    small alias among them) load; a few nested aliases that expand to millions do not."""
    from federation_deploy.errors import ConfigError
    from federation_deploy.yamlio import loads_located

    plain = "".join(f"k{i}: {i}\n" for i in range(150_000)) + "z: &z [1]\ny: [*z, *z]\n"
    assert len(loads_located(plain, "big.yaml")) == 150_002
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
        for i in range(9))
    with pytest.raises(ConfigError, match="bomb.yaml:5: YAML aliases expand"):
        loads_located(bomb, "bomb.yaml")


# --------------------------------------------------------------------------------------------
# Values read as helm reads them (go-yaml v2 through sigs.k8s.io/yaml, then JSON): each scalar
# is compared with what the real helm makes of the same text, so the table cannot drift from
# helm. Issue 29 item 4: 12:30 rendered as 750, y/n as strings, 1e+3 and 0o17 as strings.

HELM_SCALARS = [
    "12:30", "-1:30", "1:20", "190:20:30", "y", "n", "Y", "N", "yes", "no", "YES", "NO", "on",
    "off", "On", "OFF", "true", "False", "TRUE", "1e+3", "1e3", "1E3", "1.0e3", "1.5E-2",
    "0o17", "0O17", "017", "08", "0x1F", "0X1f", "0b101", "-0b101", "~", "null", "Null", "NULL",
    "1_000", "1_0.5", "+12", "-12", "+0x1F", "-0x1F", "2024-01-01", "2024-01-01T10:00:00Z",
    "2024-01-01 10:00:00", "1.", "-.5", ".5", "9007199254740993", "18446744073709551615",
    "99999999999999999999", "0.1", "0", "-0", "+.5e-3", "1e", "0x", "0b2", "tRUE", "nO", "=",
    "<<x", ".5_0", "._5", ".5__0", ".5_", ".5_e3", "1:2:3.5", "0:0", "12:60", "3.14.15",
    "1__2", "_1", "0o8", "abc", "1e400",
]


def helm_reading(helm: str, tmp: Path, scalars: list[str]) -> list[Any]:
    """What helm makes of each plain scalar as a values file's value: one helm call for the
    lot (a tiny chart that prints each value with toJson, in the file's order)."""
    chart = tmp / "probe"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "out.yaml").write_text(
        "{{- range $k, $v := .Values }}\n# {{ $k }} {{ $v | toJson }}\n{{- end }}\n")
    values = tmp / "values.yaml"
    values.write_text("".join(f"k{i:05d}: {text}\n" for i, text in enumerate(scalars)))
    out = subprocess.run([helm, "template", "probe", str(chart), "-f", str(values)],
                         capture_output=True, text=True, check=True).stdout
    found = dict(line[2:].split(" ", 1) for line in out.splitlines() if line.startswith("# k"))
    return [json.loads(found[f"k{i:05d}"], parse_int=float) for i in range(len(scalars))]


def our_reading(scalars: list[str]) -> list[Any]:
    """What we hand helm for the same file: our values as JSON, read as helm reads JSON
    (every number a float64)."""
    text = "".join(f"k{i:05d}: {s}\n" for i, s in enumerate(scalars))
    data = to_plain(loads_located(text, "values.yaml"))
    return [json.loads(json.dumps(data[f"k{i:05d}"]), parse_int=float)
            for i in range(len(scalars))]


def test_values_scalars_are_read_as_helm_reads_them(helm_binary: str, tmp_path: Path) -> None:
    helm = helm_reading(helm_binary, tmp_path, HELM_SCALARS)
    ours = our_reading(HELM_SCALARS)
    differ = [(s, o, h) for s, o, h in zip(HELM_SCALARS, ours, helm, strict=True) if o != h]
    assert differ == []
    # the cases, spelled out
    assert dict(zip(HELM_SCALARS, ours, strict=True))["12:30"] == "12:30"
    assert dict(zip(HELM_SCALARS, ours, strict=True))["y"] is True


def test_mapping_keys_are_helm_json_keys(helm_binary: str, tmp_path: Path) -> None:
    keys = ["y", "no", "1.5", "0x1F", "1e3", "1e6", "017", "12:30", "0.33333334", "100.0", "7",
            "1e39", "-1e39", "1e-50"]
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "out.yaml").write_text(
        "{{- range $k, $v := .Values }}\n# {{ $k | toJson }} {{ $v }}\n{{- end }}\n")
    text = "".join(f"{k}: {i}\n" for i, k in enumerate(keys))
    (tmp_path / "v.yaml").write_text(text)
    out = subprocess.run([helm_binary, "template", "p", str(chart), "-f",
                          str(tmp_path / "v.yaml")], capture_output=True, text=True,
                         check=True).stdout
    helm = {int(line.split()[2]): json.loads(line.split()[1])
            for line in out.splitlines() if line.startswith('# "')}
    ours = {v: k for k, v in to_plain(loads_located(text, "v.yaml")).items()}
    assert ours == helm


def test_a_null_key_is_refused_as_helm_refuses_it() -> None:
    with pytest.raises(ConfigError) as info:
        loads_located("a: 1\nnull: 2\n", "values.yaml")
    assert "values.yaml:2" in str(info.value) and "null mapping key" in str(info.value)


PLAIN_PIECES = st.sampled_from([
    "0", "1", "7", "8", "9", "12", "017", "_", ".", ":", "e", "E", "+", "-", "0x", "0o", "0b",
    "1F", "y", "n", "Y", "N", "yes", "no", "on", "off", "true", "NO", "Off", "null", "~",
    "inf", "nan", ".inf", "30", "59", "60", "2024-01-01", "T", "Z", "x", "a",
])


def _is_plain_scalar(text: str) -> bool:
    """text is one plain scalar when written after `k: ` (no indicator, no comment, no flow)."""
    try:
        node = yaml.compose(f"k: {text}\n")
    except yaml.YAMLError:
        return False
    if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
        return False
    value = node.value[0][1]
    return isinstance(value, yaml.ScalarNode) and value.style is None and value.value == text


YAML11_SCALARS = st.lists(PLAIN_PIECES, min_size=1, max_size=5).map("".join).filter(
    _is_plain_scalar).filter(lambda t: t.lower().lstrip("+-") not in (".inf", ".nan"))


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(YAML11_SCALARS, min_size=100, max_size=300))
def test_yaml11_scalars_read_as_helm_reads_them(helm_binary: str, tmp_path: Path,
                                                scalars: list[str]) -> None:
    """Many scalars in one helm call: every one must reach helm as helm reads the file."""
    helm = helm_reading(helm_binary, tmp_path, scalars)
    ours = our_reading(scalars)
    assert [(s, o) for s, o, h in zip(scalars, ours, helm, strict=True) if o != h] == []


@pytest.mark.parametrize("number", [0.00001, 1e-7, 2.5e-12, 0.1 + 0.2, 1e20, 60.0, -3.25])
def test_floats_written_round_trip_are_decimals_every_reader_reads_back(number: float) -> None:
    text = dumps_round_trip({"weight": number})
    assert "e" not in text.split(":", 1)[1]
    assert loads_located(text, "f.yaml")["weight"] == number
    assert yaml.safe_load(text)["weight"] == number  # PyYAML (YAML 1.1) too


# issue 29 re-trial, item 5: !!binary, !!set, !!omap, !!pairs passed validate and render, then
# deploy --dry-run crashed (bytes are not JSON) or validate did (omap: TypeError)
TAGGED = """\
bin: !!binary aGVsbG8=
folded: !!binary |
  aGVs
  bG8=
notutf8: !!binary //79
flowset: !!set {a, b}
blockset: !!set
  ? c
  ? d
om: !!omap
  - a: 1
  - b: 2
pairs: !!pairs
  - a: 1
  - a: 2
omapmap: !!omap {a: 1}
seqmap: !!seq {a: 1}
mapseq: !!map [1]
"""


def helm_values(helm: str, tmp: Path, text: str) -> Any:
    """The whole of a values file as helm reads it (toJson of .Values)."""
    chart = tmp / "whole"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: whole\nversion: 0.1.0\n")
    (chart / "templates" / "out.yaml").write_text("# {{ .Values | toJson }}\n")
    (tmp / "values.yaml").write_text(text)
    out = subprocess.run([helm, "template", "w", str(chart), "-f", str(tmp / "values.yaml")],
                         capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("# {"))
    return json.loads(line[2:])


def test_tagged_collections_and_binary_are_read_as_helm_reads_them(
        helm_binary: str, tmp_path: Path) -> None:
    ours = json.loads(json.dumps(to_plain(loads_located(TAGGED, "values.yaml"))))
    assert ours == helm_values(helm_binary, tmp_path, TAGGED)
    assert ours["bin"] == "hello" and ours["blockset"] == {"c": None, "d": None}
    assert ours["om"] == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize(("text", "fragment"), [
    ("a: 1\nb: !!binary '!!!'\n", "!!binary that is not base64"),
    ("a: 1\nb: !!set x\n", "!!set on a single value"),
])
def test_tags_helm_cannot_mean_are_refused_with_the_line(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads_located(text, "values.yaml")
    assert "values.yaml:2" in str(info.value) and fragment in str(info.value)


# issue 29 re-trial, item 6: `<<: *b` then `x: 3` was refused as a duplicate key; helm gives 3
MERGES = """\
base: &b {x: 1, y: 2}
merged:
  <<: *b
  x: 3
merged_first:
  x: 3
  <<: *b
merged_list:
  <<: [*b, {z: 9, x: 7}]
  y: 5
nested:
  inner: &in
    <<: *b
    w: 1
  again:
    <<: *in
    x: 4
twice:
  <<: *b
  <<: {x: 8}
"""


def test_merge_keys_are_read_as_helm_reads_them(helm_binary: str, tmp_path: Path) -> None:
    ours = json.loads(json.dumps(to_plain(loads_located(MERGES, "values.yaml"))))
    assert ours == helm_values(helm_binary, tmp_path, MERGES)
    assert ours["merged"] == {"x": 3, "true": 2}  # the explicit key overrides the merged one
    assert ours["merged_list"]["x"] == 1  # the list's first mapping takes precedence


def test_a_real_duplicate_next_to_a_merge_is_still_refused() -> None:
    with pytest.raises(ConfigError) as info:
        loads_located("base: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n  x: 3\n", "values.yaml")
    assert "values.yaml:5" in str(info.value) and "duplicate key 'x'" in str(info.value)
    with pytest.raises(ConfigError, match="values.yaml:2.*merge key"):
        loads_located("m:\n  <<: 3\n", "values.yaml")


def test_merged_keys_know_their_lines() -> None:
    data = loads_located("base: &b\n  x: 1\n  w: 2\nm:\n  <<: *b\n  x: 3\n", "values.yaml")
    assert line_of(data["m"], "x") == 6 and line_of(data["m"], "w") == 3
