"""Click group `charts` (thin: parse options, call commands.charts, print the result)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands import charts as commands


@click.group()
def charts() -> None:
    """The chart pins of federation.yaml's `charts:` table.

    Releases name an entry of the table (`chart: binderhub`) and deploy its version, unless
    the release pins its own `version:` (staging ahead of the others).
    """


@charts.command()
@click.option("--output", "-o", "output", type=click.Choice(["table", "json"]),
              default="table", show_default=True, help="Table for people, JSON for scripts.")
@click.pass_obj
def outdated(obj: Context, output: str) -> None:
    """List every pinned chart with the newest version in its repository.

    Helm repositories are asked for their index.yaml; oci:// charts through `helm show
    chart`. Dev versions (pre-releases) are offered only to pins that are dev versions. A
    repository that cannot be asked is reported on its chart's row and the others are still
    listed; the exit code is then 1 (an outdated chart alone is exit 0).
    """
    emit(obj, commands.outdated(obj.federation(), obj.runner(), output))


@charts.command()
@click.argument("name")
@click.argument("version", required=False)
@click.option("--no-check", is_flag=True,
              help="Write VERSION (required) without asking the repository whether it has "
                   "it, for a repository that cannot be reached from here.")
@click.pass_obj
def bump(obj: Context, name: str, version: str | None, no_check: bool) -> None:
    """Set the pin of chart NAME to VERSION (default: the newest in its repository).

    Rewrites charts.NAME.version in federation.yaml, keeping comments, order and quoting,
    after checking that the repository has VERSION (a repository that cannot be asked changes
    nothing). Members that pin their own version on a release keep it (and are named). Then
    update the golden files of the tests with
    `UPDATE_GOLDEN=1 pytest tests/values/test_golden.py`.
    """
    emit(obj, commands.bump(obj.federation(), name, version, obj.runner(),
                            check=not no_check))


COMMANDS: list[click.Command] = [charts]
