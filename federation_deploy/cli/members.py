"""Click command `members` (thin: parse options, call commands.members, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands import members as members_command


@click.command()
@click.option("--output", "-o", "output", type=click.Choice(members_command.OUTPUT_FORMATS),
              default="table", show_default=True,
              help="Table for people, JSON or YAML for scripts (the same keys as traffic's).")
@click.pass_obj
def members(obj: Context, output: str) -> None:
    """List the members: cloud, url, weight, share of launches, prime.

    share is the percent of launches a member gets: its weight over the sum of the weights of
    the routed members (members with `routed: false`, like staging, get none).
    """
    emit(obj, members_command.members(obj.federation(), output))


COMMANDS: list[click.Command] = [members]
