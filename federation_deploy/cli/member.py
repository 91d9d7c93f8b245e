"""Click group `member` (thin: parse options, call commands.member, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import POSITIVE_WEIGHT
from federation_deploy.commands import member as commands
from federation_deploy.config import CLOUDS


@click.group()
def member() -> None:
    """Add a member ready to provision, deploy and ramp; remove one out of service."""


@member.command("new")
@click.argument("name")
@click.option("--cloud", type=click.Choice(CLOUDS), required=True,
              help="aws and gcp get a terraform stack of the shared module; kubeconfig and "
                   "external none (external: routed to, never deployed).")
@click.option("--region", metavar="R", default=None,
              help="The cluster's region (aws: default us-east-2; gcp: its location, default "
                   "us-central1).")
@click.option("--url", metavar="U", default=None,
              help="The member's BinderHub URL. Default: https://NAME.<redirector host>.")
@click.option("--project", metavar="P", default=None,
              help="gcp only (required there): the Google Cloud project of its cluster.")
@click.option("--target-weight", type=POSITIVE_WEIGHT, default=None,
              help="The weight a ramp takes it to. Default: the smallest weight in service.")
@click.pass_obj
def new(obj: Context, name: str, cloud: str, region: str | None, url: str | None,
        project: str | None, target_weight: float | None) -> None:
    """Write member NAME: its terraform stack (aws, gcp: a root of the shared module under
    terraform/<cloud>/NAME with its own state key and lock table, and its lock file from
    `terraform lock`), config/values/NAME.yaml (its releases are those of the first member of
    the same cloud), and its federation.yaml entry at weight 0 (no launches until a ramp).
    `validate` passes when it returns; it prints the next commands (bootstrap, plan, apply,
    deploy, ramp). On any error, nothing it wrote is left.
    """
    emit(obj, commands.new(obj.federation(), name, cloud, obj.runner(), region=region,
                           url=url, project=project, target_weight=target_weight))


@member.command("remove")
@click.argument("name")
@click.pass_obj
def remove(obj: Context, name: str) -> None:
    """Remove member NAME's entry from federation.yaml: refused while it has weight, is the
    prime or runs the redirector. Its files are listed for you to delete, not deleted.
    """
    emit(obj, commands.remove(obj.federation(), name, prime_command=_has_command(
        click.get_current_context(), ("traffic", "prime"))))


def _has_command(ctx: click.Context, path: tuple[str, ...]) -> bool:
    """Whether this CLI has the subcommand path (e.g. `traffic prime`): advice names only
    commands that exist."""
    command: click.Command | None = ctx.find_root().command
    for name in path:
        if not isinstance(command, click.Group):
            return False
        command = command.get_command(ctx, name)
    return command is not None


COMMANDS: list[click.Command] = [member]
