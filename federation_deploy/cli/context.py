"""The object Click passes to every command: global options and the lazily loaded config."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click

from federation_deploy.config import Federation, load_federation
from federation_deploy.progress import printable
from federation_deploy.runner import Runner


@dataclass
class Context:
    config_dir: Path
    verbosity: int = 0
    _federation: Federation | None = field(default=None, repr=False)

    def federation(self) -> Federation:
        """Load and validate config once per invocation (warnings are validate's to print)."""
        if self._federation is None:
            self._federation = load_federation(self.config_dir)
        return self._federation

    def runner(self, *, plumbing: bool = False) -> Runner:
        """The Runner every command runs its tools through: it echoes each command to stderr
        and streams the tools' progress (terraform, helm's stderr) as it comes, unless -q;
        with -v the full output (terraform's refresh lines, helm --debug). `plumbing` is for
        tools a command only consults along the way (git in ci-matrix, the sandbox's servers),
        which would drown its own progress: echoed and streamed with -v only.
        """
        shown = self.verbosity >= (1 if plumbing else 0)
        return Runner(echo=shown, stream=shown, full_output=self.verbosity >= 1,
                      color=stderr_in_colour())

    def progress(self, message: str) -> None:
        if self.verbosity >= 0:
            click.echo(printable(message, keep_lines=True), err=True)


def stderr_in_colour(environ: Mapping[str, str] | None = None) -> bool:
    """Tools may colour what they stream: stderr is a terminal and NO_COLOR is unset or empty
    (https://no-color.org)."""
    environ = os.environ if environ is None else environ
    return not environ.get("NO_COLOR") and sys.stderr.isatty()


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def confirm_or_abort(question: str, yes: bool) -> None:
    """Deploy-style confirmation: skipped with --yes or in CI; refuses without a terminal."""
    from federation_deploy.errors import UsageError

    if yes or in_ci():
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question} needs confirmation: pass --yes (no terminal to ask on)")
    if not click.confirm(question, default=False, err=True):
        raise UsageError("aborted: not confirmed")
