"""Click command `schema` (thin: call commands.schema, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands import schema as schema_command


@click.command()
@click.pass_obj
def schema(obj: Context) -> None:
    """Print the JSON Schema of federation.yaml (for editors and check-jsonschema).

    Generated from the config schema the loader uses; the package ships the same file
    (federation_deploy/schemas/federation.schema.json), and config/federation.yaml points
    yaml-language-server at it with a `# yaml-language-server: $schema=...` comment.
    `validate` still checks what a JSON Schema cannot say (URLs, one prime, chart pins).
    """
    emit(obj, schema_command.schema())


COMMANDS: list[click.Command] = [schema]
