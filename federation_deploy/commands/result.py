"""What every command returns: data for stdout, messages for stderr, the exit code."""

from __future__ import annotations

from dataclasses import dataclass

from federation_deploy.errors import EXIT_OK, FederationDeployError


@dataclass(frozen=True)
class CommandResult:
    """The one result type of commands/: the CLI prints it with cli.output.emit, nothing else.

    `stdout` is the command's data, printed as it is (a newline added when it lacks one), so
    `federation-deploy render gke > values.yaml` keeps working; `messages` are progress, notes
    and warnings, printed to stderr in order after it unless -q; `exit_code` follows the CLI
    contract (0 ok, 1 failed, 3 changes or drift; bad usage and config raise instead).
    `warnings` go to stderr before the data, even with -q: the data is incomplete (traffic's
    live columns when the redirector could not be asked). `summary` is markdown for a CI
    job's summary page (written under GitHub Actions only); `error` is a failure that still
    has a summary to show (a rolled-back ramp): the CLI writes the summary, then raises it,
    so it is reported as every other error is.
    """


    exit_code: int = EXIT_OK
    stdout: str = ""
    messages: tuple[str, ...] = ()
    # stdout was already shown on stderr as the tool wrote it (terraform's plan): on a
    # terminal, where both streams end up, it is not printed a second time
    streamed: bool = False
    warnings: tuple[str, ...] = ()
    summary: str | None = None
    error: FederationDeployError | None = None
