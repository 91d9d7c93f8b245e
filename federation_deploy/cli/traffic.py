"""Click group `traffic` (thin: parse options, call commands.traffic, print); its
subcommands drain, restore and set live in cli/drain.py."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.drain import COMMANDS as DRAIN_COMMANDS
from federation_deploy.cli.output import emit
from federation_deploy.commands import traffic as commands


@click.group(invoke_without_command=True)
@click.option("--output", "-o", type=click.Choice(commands.OUTPUT_FORMATS), default="table",
              show_default=True,
              help="Table for people, JSON or YAML for scripts (the same keys as members').")
@click.option("--redirector-url", metavar="URL",
              help="Also show the live state: in rotation, health, live weight and share, "
                   "redirects counted (from the redirector's /active_hosts and /metrics). "
                   "[default: none; in a sandbox, its redirector]")
@click.pass_context
def traffic(ctx: click.Context, output: str, redirector_url: str | None) -> None:
    """Weights and shares of launches per member, every ramp in progress and every drained
    member; `traffic drain|restore|set MEMBER` change one member's weight.

    share is the target percent of launches: the member's weight over the sum of the weights
    of the routed members. A ramp in progress shows its step, since when, and the last
    healthy check; a drained member since when and why.
    """
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    emit(obj, commands.traffic(obj.federation(), redirector_url, output))


for _command in DRAIN_COMMANDS:
    traffic.add_command(_command)

COMMANDS: list[click.Command] = [traffic]
