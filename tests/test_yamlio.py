"""YAML in one module: located reading, plain output, round-trip rewriting, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
