"""real_path within one load (one_resolution) answers exactly as Path.resolve, links and all,
and remembers nothing from one load to the next."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from federation_deploy.config.problems import below, confined, one_resolution, real_path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A config-like tree with every kind of link the confinement meets."""
    root = tmp_path / "config"
    (root / "values" / "sub").mkdir(parents=True)
    (root / "secrets" / "values").mkdir(parents=True)
    (root / "values" / "a.yaml").write_text("a: 1\n")
    (root / "secrets" / "values" / "s.yaml").write_text("s: 1\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "etc.yaml").write_text("x: 1\n")
    (root / "values" / "out.yaml").symlink_to(outside / "etc.yaml")
    (root / "values" / "rel.yaml").symlink_to("../secrets/values/s.yaml")
    (root / "values" / "linkdir").symlink_to(outside)
    (root / "values" / "loop").symlink_to("loop")
    (root / "values" / "chain").symlink_to("rel.yaml")
    (root / "values" / "dangling").symlink_to("nowhere.yaml")
    (root / "alias").symlink_to("values")
    return root


NAMES = ["values/a.yaml", "values/out.yaml", "values/rel.yaml", "values/linkdir/etc.yaml",
         "values/loop", "values/loop/x.yaml", "values/chain", "values/dangling",
         "values/missing.yaml", "values/missing/deeper.yaml", "values/sub/../a.yaml",
         "values/linkdir/../etc.yaml", "alias/out.yaml", "alias/sub/../rel.yaml",
         "values/a.yaml/under-a-file", "../outside/etc.yaml", "."]


def _plain(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return None


def test_one_resolution_answers_as_path_resolve(tree: Path) -> None:
    @one_resolution
    def within_a_load() -> list[Path | None]:
        # twice: the second answers come from what the load already knows
        return [real_path(tree / name) for name in NAMES + NAMES]

    assert within_a_load() == [_plain(tree / name) for name in NAMES + NAMES]
    assert real_path(tree / "values" / "loop") is None


def test_relative_paths_resolve_against_the_working_directory(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    names = [Path(name) for name in NAMES]
    assert one_resolution(lambda: [real_path(p) for p in names])() == [
        _plain(p) for p in names]


def test_nothing_is_kept_between_loads(tree: Path) -> None:
    """A link changed between two loads (two commands, two tests) is seen by the next load."""
    link = tree / "values" / "switch.yaml"
    link.symlink_to("a.yaml")
    assert one_resolution(lambda: confined(tree, "values/switch.yaml"))()
    link.unlink()
    link.symlink_to(tree.parent / "outside" / "etc.yaml")
    assert not one_resolution(lambda: confined(tree, "values/switch.yaml"))()
    # a directory swapped for a link out between loads, too
    os.rename(tree / "values" / "sub", tree / "sub-was")
    (tree / "values" / "sub").symlink_to(tree.parent / "outside")
    assert not one_resolution(lambda: confined(tree, "values/sub/etc.yaml"))()


def test_nested_loads_share_one_resolution(tree: Path) -> None:
    @one_resolution
    def inner() -> Path | None:
        return real_path(tree / "values" / "chain")

    @one_resolution
    def outer() -> tuple[Path | None, Path | None]:
        return inner(), real_path(tree / "values" / "chain")

    real = (tree / "secrets" / "values" / "s.yaml").resolve()
    assert outer() == (real, real)


@pytest.mark.parametrize(("real", "base", "expected"), [
    ("/a/b/c.yaml", "/a/b", True), ("/a/b", "/a/b", True), ("/a/bc/d.yaml", "/a/b", False),
    ("/a", "/a/b", False), ("/etc/passwd", "/", True), ("/", "/", True),
])
def test_below_is_is_relative_to(real: str, base: str, expected: bool) -> None:
    assert below(Path(real), Path(base)) is Path(real).is_relative_to(base) is expected
