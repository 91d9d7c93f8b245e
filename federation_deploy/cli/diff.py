"""Click command `diff` (thin: parse options, call commands.diff, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import member_argument, release_option
from federation_deploy.commands import diff as commands


@click.command()
@member_argument
@release_option
@click.pass_obj
def diff(obj: Context, member: str, releases: tuple[str, ...]) -> None:
    """Show what `deploy MEMBER` would change, changing nothing.

    Uses the helm-diff plugin when it is installed (`helm plugin list`); otherwise compares
    `helm template` of each release with `helm get manifest` of what is deployed, object by
    object. Secret values never show, on either side: a Secret's data by key, and every
    value the secret layers set (by key path: the new value, and the deployed release's
    value at the same path, a rotated secret's old one) read `<redacted>`, or `<redacted>
    (changed)` where it changed. Needs the cluster's credentials, like deploy.
    Exit 0 no change, 3 changes, 1 error.
    """
    emit(obj, commands.diff(obj.federation(), member, runner=obj.runner(),
                            progress=obj.progress, releases=releases))


COMMANDS: list[click.Command] = [diff]
