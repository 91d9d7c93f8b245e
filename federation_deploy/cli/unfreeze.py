"""Click command `unfreeze` (thin: call commands.unfreeze, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands import unfreeze as commands


@click.command()
@click.pass_obj
def unfreeze(obj: Context) -> None:
    """End the federation's freeze: remove federation.yaml's `freeze:` block.

    Written through the one weight writer (the generation stays: no weight changes) and
    announced like every change; an expired freeze is removed the same way.
    """
    emit(obj, commands.unfreeze(obj.federation(), progress=obj.progress))


COMMANDS: list[click.Command] = [unfreeze]
