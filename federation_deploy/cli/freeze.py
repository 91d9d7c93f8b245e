"""Click command `freeze` (thin: parse options, call commands.freeze, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands import freeze as commands
from federation_deploy.errors import UsageError


@click.command()
@click.option("--reason", metavar="TEXT",
              help="Why (written to federation.yaml's `freeze:` block, shown in every refusal).")
@click.option("--until", "until", metavar="2d|36h|ISO",
              help="When the freeze ends: a duration from now (2d, 36h, 90m) or an ISO 8601 "
                   "time with a zone (2024-05-03T12:00:00Z).")
@click.option("--who", metavar="NAME",
              help="Who freezes. [default: $GITHUB_ACTOR, else git's user.name]")
@click.option("--check", is_flag=True,
              help="Only say whether a freeze is in force: exit 0 if so, 1 if not (none, or "
                   "expired); changes nothing. For scripts and workflows.")
@click.pass_obj
def freeze(obj: Context, reason: str | None, until: str | None, who: str | None,
           check: bool) -> None:
    """Freeze the federation: no deploy, ramp or `traffic set` until --until.

    Writes a `freeze:` block (reason, who, until, since) to federation.yaml through the one
    weight writer (generation one more). While it is in force, deploy, ramp (also --advance,
    the scheduled job) and traffic set exit 2 naming the reason, who and the expiry; traffic
    drain, traffic restore and ramp --abort still run. A freeze whose time is over is ignored
    (and said so). Announced to Grafana and the webhook like every change. Run again to
    replace it; `unfreeze` ends it early.
    """
    if check:
        if reason or until or who:
            raise UsageError("--check only reads the freeze: it takes no --reason, --until, --who")
        emit(obj, commands.freeze_status(obj.federation()))
        return
    if not reason or not until:
        raise UsageError("freeze needs --reason TEXT and --until 2d|36h|ISO (or --check)")
    emit(obj, commands.freeze(obj.federation(), reason, until, who,
                              runner=obj.runner(plumbing=True), progress=obj.progress))


COMMANDS: list[click.Command] = [freeze]
