"""emit: the one way a command's result reaches people (stdout, stderr, the CI summary, the
exit code)."""

from __future__ import annotations

import sys

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.github import append_step_summary
from federation_deploy.commands.result import CommandResult
from federation_deploy.progress import printable, redact_userinfo


def emit(obj: Context, result: CommandResult) -> None:
    """Print a command's result: its warnings (always), its data on stdout, its messages on
    stderr (unless -q), its summary on the CI job's page (under GitHub Actions), then raise
    its error or exit with its code. Every command's output goes through here."""
    for warning in result.warnings:
        click.echo(printable(f"warning: {warning}", keep_lines=True), err=True)
    shown_already = result.streamed and sys.stdout.isatty()
    if result.stdout and not shown_already:
        # tables and JSON as they are, but never a URL's user:password@ (issue 29 re-trial:
        # a --redirector-url with a password was in every "not checked" line)
        click.echo(redact_userinfo(result.stdout), nl=not result.stdout.endswith("\n"))
    for message in result.messages:
        obj.progress(message)
    if result.summary is not None:
        append_step_summary(result.summary)  # warns, never fails, when it cannot write
    if result.error is not None:
        raise result.error
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)
