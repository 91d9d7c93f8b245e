"""Click command `drift` (thin: parse options, call commands.drift, print)."""

from __future__ import annotations

from pathlib import Path

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import complete_member
from federation_deploy.commands import drift as commands


@click.command()
@click.argument("member", required=False, shell_complete=complete_member)
@click.option("--output", "-o", type=click.Choice(commands.OUTPUT_FORMATS), default="table",
              show_default=True, help="A table for people, JSON for the drift workflow.")
@click.option("--part", "parts", multiple=True, type=click.Choice(commands.PARTS),
              help="Check only this part (repeatable). [default: all three]")
@click.option("--redirector-url", metavar="URL",
              help="The redirector whose weights are compared. [default: https://<redirector."
                   "host> of federation.yaml; in a sandbox, its redirector]")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Check nothing: read the report of an earlier `drift -o json` (the drift "
                   "workflow checks in one step and keeps issues in the next).")
@click.option("--github-issue", is_flag=True,
              help="Keep one GitHub issue per member (label `drift`): opened on drift, its "
                   "body updated, closed once clean; left alone when not everything could be "
                   "checked. Needs GITHUB_TOKEN and GITHUB_REPOSITORY (GITHUB_API_URL "
                   "optional), as GitHub Actions sets them.")
@click.pass_obj
def drift(obj: Context, member: str | None, output: str, parts: tuple[str, ...],
          redirector_url: str | None, report: Path | None, github_issue: bool) -> None:
    """Compare what runs with the config, per member (every member without MEMBER).

    \b
    terraform  the member's stack planned with -detailed-exitcode (`terraform check`)
    helm       each release as deployed: installed, status `deployed`, the pinned chart
               version, and its values (`helm get values`) against `render` (said only
               as "differ" with the key paths: no value is ever shown)
    weights    the member's weight and ramp flag the redirector serves (its /metrics)
               against federation.yaml; for the redirector's member also the generation

    A part that cannot be checked (no credentials, cluster or redirector unreachable) says
    "not checked" and why, and is never reported clean. Changes nothing.
    Exit 0 clean, 3 drift, 1 when something could not be checked (and nothing drifted).
    """
    # a saved report needs no config (the drift workflow's issues job has no secrets)
    fed = None if report is not None else obj.federation()
    emit(obj, commands.drift(fed, member, runner=obj.runner(), progress=obj.progress,
                             output=output, parts=parts or commands.PARTS,
                             redirector_url=redirector_url, report=report,
                             github_issue=github_issue))


COMMANDS: list[click.Command] = [drift]
