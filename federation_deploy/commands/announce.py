"""A command's result with its announcement made (Grafana, the webhook: actions/notify.py):
what could not be sent becomes warnings on stderr and lines in the step summary, never a
failed command."""

from __future__ import annotations

from dataclasses import replace

from federation_deploy.actions.notify import Event, Notifier, warnings_markdown
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation


def announced(fed: Federation, event: Event, result: CommandResult,
              notifier: Notifier | None = None) -> CommandResult:
    """result, after event was sent; the failed sends added to its warnings and summary."""
    return with_notify_warnings(result, (notifier or Notifier.for_federation(fed)).send(event))


def with_notify_warnings(result: CommandResult, warnings: tuple[str, ...]) -> CommandResult:
    """result with the warnings of announcements that could not be sent."""
    if not warnings:
        return result
    return replace(result, warnings=(*result.warnings, *warnings),
                   summary=(result.summary or "") + warnings_markdown(warnings))
