"""Click command `validate` (thin: parse options, call commands.validate, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands import validate as validate_command


@click.command()
@click.option("--without-secrets", is_flag=True,
              help="Leave out every secret values file (and git-crypt-locked ones are never "
                   "needed): for pull requests from forks, which have no key. The stand-in "
                   "named in secrets.stand_in takes their place.")
@click.pass_obj
def validate(obj: Context, without_secrets: bool) -> None:
    """Load and check all config; change nothing.

    Checks federation.yaml (types, required and unknown keys, one prime among routed members,
    weights >= 0, https URLs), every values file (release names, YAML), chart pins (exact
    versions) and terraform pins (each stack's required_version is the pinned version or a
    range that allows it).
    Exit 0 when valid, 2 listing every problem with file, line and key.
    """
    emit(obj, validate_command.validate(obj.config_dir, without_secrets=without_secrets))


COMMANDS: list[click.Command] = [validate]
