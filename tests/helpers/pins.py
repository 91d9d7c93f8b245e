"""The chart versions the fixture federation pins, so that tests never spell them: a bump of
the fixture changes its federation.yaml and the golden files only."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from federation_deploy.config import load_federation

FIXTURE_CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "federation" / "config"


@cache
def pinned(chart: str) -> str:
    """The version the fixture federation's `charts:` table pins for chart."""
    return load_federation(FIXTURE_CONFIG).chart(chart).version
