"""The chart versions the repository's config pins, so that tests never spell them: a bump
changes config/federation.yaml and the golden files only."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from federation_deploy.config import load_federation

REPO = Path(__file__).resolve().parents[2]


@cache
def pinned(chart: str) -> str:
    """The version config/federation.yaml's `charts:` table pins for chart."""
    return load_federation(REPO / "config").chart(chart).version
