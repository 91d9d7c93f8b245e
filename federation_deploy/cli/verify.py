"""Click command `verify` (thin: parse options, call commands.verify, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import DURATION, POSITIVE_DURATION, member_argument
from federation_deploy.commands import verify as commands
from federation_deploy.durations import Duration


@click.command()
@member_argument
@click.option("--attempts", type=click.IntRange(min=1), default=6, show_default=True,
              help="Tries per check before giving up.")
@click.option("--delay", type=DURATION, default="10s", show_default=True,
              help="Time between tries (like 10s, 1m, 500ms, or plain seconds).")
@click.option("--request-timeout", type=POSITIVE_DURATION, default="10s", show_default=True,
              help="Timeout of each HTTP request.")
@click.pass_obj
def verify(obj: Context, member: str, attempts: int, delay: Duration,
           request_timeout: Duration) -> None:
    """Check MEMBER is up: its /health and /versions (the deploy's verify stage alone).

    /health must answer JSON with `ok: true`, every `checks[].ok` true and the pod quota's
    headroom the redirector wants; /versions must answer a JSON object equal to the prime's.
    Each is retried. Prints both as JSON on stdout; exit 1 naming the failing check when the
    member stays unhealthy. Works for external members too.
    """
    retry = commands.Retry(attempts=attempts, delay=delay.seconds,
                           timeout=request_timeout.seconds)
    emit(obj, commands.verify(obj.federation(), member, progress=obj.progress, retry=retry))


COMMANDS: list[click.Command] = [verify]
