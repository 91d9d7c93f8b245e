"""Command `unfreeze`: remove federation.yaml's `freeze:` block (commands/freeze.py writes it)."""

from __future__ import annotations

from federation_deploy.actions.notify import Notifier
from federation_deploy.commands import freeze as freezing
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation
from federation_deploy.durations import Clock
from federation_deploy.progress import Progress, quiet


def unfreeze(fed: Federation, *, clock: Clock | None = None, progress: Progress = quiet,
             notifier: Notifier | None = None) -> CommandResult:
    """`unfreeze`: the freeze (in force or expired) removed through the one writer, announced."""
    return freezing.unfreeze(fed, clock=clock, progress=progress, notifier=notifier)
