"""Click commands validate, members and render; and emit, which prints every command's result."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.params import complete_release, member_argument
from federation_deploy.commands import foundation
from federation_deploy.commands.result import CommandResult
from federation_deploy.traffic.formatting import OUTPUT_FORMATS


def emit(obj: Context, result: CommandResult) -> None:
    """Print a command's result: its data on stdout, its messages on stderr (unless -q),
    then exit with its code. Every command's output goes through here."""
    shown_already = result.streamed and sys.stdout.isatty()
    if result.stdout and not shown_already:
        click.echo(result.stdout, nl=not result.stdout.endswith("\n"))
    for message in result.messages:
        obj.progress(message)
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)


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
    versions) and terraform pins (each stack's required_version equals the pinned version).
    Exit 0 when valid, 2 listing every problem with file, line and key.
    """
    emit(obj, foundation.validate(obj.config_dir, without_secrets=without_secrets))


@click.command()
@click.option("--output", "-o", "output", type=click.Choice(OUTPUT_FORMATS),
              default="table", show_default=True,
              help="Table for people, JSON or YAML for scripts (the same keys as traffic's).")
@click.pass_obj
def members(obj: Context, output: str) -> None:
    """List the members: cloud, url, weight, share of launches, prime.

    share is the percent of launches a member gets: its weight over the sum of the weights of
    the routed members (members with `routed: false`, like staging, get none).
    """
    emit(obj, foundation.members(obj.federation(), output))


@click.command()
@member_argument
@click.option("--release", "-r", "releases", multiple=True, metavar="NAME",
              shell_complete=complete_release,
              help="Only this release (repeatable). Default: every release of MEMBER.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write <release>.yaml files (mode 0600) here instead of stdout.")
@click.option("--show-secrets", is_flag=True,
              help="Print values from config/secrets/ instead of <redacted>.")
@click.option("--explain", metavar="KEY.PATH",
              help="Say which file and line set KEY.PATH (e.g. "
                   "binderhub.config.BinderHub.image_prefix) instead of rendering. Escape dots "
                   "inside a key with a backslash.")
@click.option("--without-secrets", is_flag=True,
              help="Leave out every secret values file (and git-crypt-locked ones are never "
                   "needed): for pull requests from forks, which have no key. The stand-in "
                   "named in secrets.stand_in takes their place.")
@click.pass_obj
def render(obj: Context, member: str, releases: tuple[str, ...], output_dir: Path | None,
           show_secrets: bool, explain: str | None, without_secrets: bool) -> None:
    """Print the merged Helm values of MEMBER's releases.

    Layers, lowest first: values/common.yaml < secrets/values/common.yaml <
    values/MEMBER.yaml < secrets/values/MEMBER.yaml < generated (terraform outputs saved in
    generated/, the redirector config); or the `values:` files federation.yaml lists for
    the member or release, in order. Dicts merge deeply, lists replace, null deletes a key.
    Stdout: one YAML document per release.
    """
    emit(obj, foundation.render(obj.federation(), member, list(releases) or None,
                                show_secrets=show_secrets, output_dir=output_dir,
                                explain=explain, without_secrets=without_secrets))


@click.command()
def schema() -> None:
    """Print the JSON Schema of federation.yaml (for editors and check-jsonschema).

    Generated from the config schema the loader uses; the package ships the same file
    (federation_deploy/schemas/federation.schema.json), and config/federation.yaml points
    yaml-language-server at it with a `# yaml-language-server: $schema=...` comment.
    `validate` still checks what a JSON Schema cannot say (URLs, one prime, chart pins).
    """
    from federation_deploy.config.editor_schema import federation_schema_text

    click.echo(federation_schema_text(), nl=False)


COMMANDS: list[click.Command] = [validate, members, render, schema]
