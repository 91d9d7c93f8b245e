"""The one Progress: how long work talks (a line for stderr, never stdout), and `quiet`."""

from __future__ import annotations

from collections.abc import Callable

# Every command, adapter and ramp that talks while it works takes one of these; the CLI passes
# one that writes to stderr, tests pass list.append.
Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    """The Progress that says nothing (the default where nobody listens)."""
