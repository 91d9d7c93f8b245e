"""Click command `freeze` (thin: parse options, call commands.freeze, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands import freeze as commands


@click.command()
@click.option("--reason", required=True, metavar="TEXT",
              help="Why (written to federation.yaml's `freeze:` block, shown in every refusal).")
@click.option("--until", "until", required=True, metavar="2d|36h|ISO",
              help="When the freeze ends: a duration from now (2d, 36h, 90m) or an ISO 8601 "
                   "time with a zone (2024-05-03T12:00:00Z).")
@click.option("--who", metavar="NAME",
              help="Who freezes. [default: $GITHUB_ACTOR, else git's user.name]")
@click.pass_obj
def freeze(obj: Context, reason: str, until: str, who: str | None) -> None:
    """Freeze the federation: no deploy, ramp or `traffic set` until --until.

    Writes a `freeze:` block (reason, who, until, since) to federation.yaml through the one
    weight writer (generation one more). While it is in force, deploy, ramp (also --advance,
    the scheduled job) and traffic set exit 2 naming the reason, who and the expiry; traffic
    drain, traffic restore and ramp --abort still run. A freeze whose time is over is ignored
    (and said so). Announced to Grafana and the webhook like every change. Run again to
    replace it; `unfreeze` ends it early.
    """
    emit(obj, commands.freeze(obj.federation(), reason, until, who,
                              runner=obj.runner(plumbing=True), progress=obj.progress))


COMMANDS: list[click.Command] = [freeze]
