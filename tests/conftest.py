"""Shared fixtures: real temporary copies of the repository's config and terraform trees."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def copy_federation(dest: Path, *, with_generated: bool = True) -> Path:
    """Copy config/ and terraform/ (without local state or secrets) to dest; return config dir."""
    ignore = shutil.ignore_patterns(".terraform", "*.tfplan", ".fd-work", "*.tfstate*")
    shutil.copytree(REPO / "terraform", dest / "terraform", ignore=ignore)
    config = dest / "config"
    shutil.copytree(REPO / "config", config, ignore=ignore)
    secrets = config / "secrets" / "values"
    for path in secrets.glob("*.yaml"):
        if not path.name.endswith(".example.yaml"):
            path.unlink()  # a developer's real secrets never leak into tests
    if not with_generated:
        shutil.rmtree(config / "generated", ignore_errors=True)
    return config


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A private, writable copy of the repository's federation config."""
    return copy_federation(tmp_path)


@pytest.fixture
def edit(config_dir: Path) -> Callable[[str, str, str], None]:
    """Replace text in a config file, failing loudly when the text is not there."""

    def _edit(relative: str, old: str, new: str) -> None:
        path = config_dir / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    return _edit
