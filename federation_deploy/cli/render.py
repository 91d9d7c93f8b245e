"""Click command `render` (thin: parse options, call commands.render, print)."""

from __future__ import annotations

from pathlib import Path

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import complete_release, member_argument
from federation_deploy.commands import render as render_command


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
    emit(obj, render_command.render(obj.federation(), member, list(releases) or None,
                                    show_secrets=show_secrets, output_dir=output_dir,
                                    explain=explain, without_secrets=without_secrets))


COMMANDS: list[click.Command] = [render]
