"""Click commands of the foundation: validate, members, render."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
