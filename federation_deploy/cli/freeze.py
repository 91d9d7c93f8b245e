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
@click.option("--replace", is_flag=True,
              help="Replace a freeze in force set by someone else (its reason, who and "
                   "expiry are lost). Your own freeze is changed without it.")
@click.pass_obj
def freeze(obj: Context, reason: str | None, until: str | None, who: str | None,
           check: bool, replace: bool) -> None:
    """Freeze the federation: no deploy, ramp or `traffic set` until --until.

    \b
    While a freeze is in force these exit 2, naming the reason, who and the expiry:
      deploy (what changes a cluster: releases, hooks, --recover), ramp (start and
      --advance, the scheduled ramp.yml too), rollout (and --advance), traffic set and
      traffic prime.
    These still run (an incident never waits for a freeze) and say a freeze is on:
      traffic drain, traffic restore, ramp --abort, deploy --dry-run and --stage verify.

    Writes a `freeze:` block (reason, who, until, since) to federation.yaml through the one
    weight writer (the generation stays: a freeze changes no weight). A freeze whose time is
    over is ignored (and said so). Announced to Grafana and the webhook like every change.
    A freeze in force is changed only with --replace, unless it is your own (extend it by
    running freeze again); `unfreeze` ends it early.
    """
    if check:
        if reason or until or who or replace:
            raise UsageError("--check only reads the freeze: it takes no --reason, --until, "
                             "--who, --replace")
        emit(obj, commands.freeze_status(obj.federation()))
        return
    if not reason or not until:
        raise UsageError("freeze needs --reason TEXT and --until 2d|36h|ISO (or --check)")
    emit(obj, commands.freeze(obj.federation(), reason, until, who,
                              runner=obj.runner(plumbing=True), progress=obj.progress,
                              replace=replace))


COMMANDS: list[click.Command] = [freeze]
