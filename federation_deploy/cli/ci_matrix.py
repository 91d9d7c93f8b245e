"""Click command `ci-matrix` (thin: parse options, call commands.ci_matrix, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands import ci_matrix as commands


@click.command("ci-matrix")
@click.option("--changed-since", "changed_since", metavar="REF", default=None,
              help="Only members whose config, values, secrets, chart pins or terraform stack "
                   "changed between REF and HEAD (common values or the package: all).")
@click.option("--terraform", "terraform_only", is_flag=True,
              help="Only members with a terraform stack; with --changed-since, only changes "
                   "to a plan count (stacks, modules, the terraform pin, the package).")
@click.option("--ramping", is_flag=True,
              help="Only members with a ramp in progress, with their step and the "
                   "redirector's member (for the ramp workflow).")
@click.option("--redirector", is_flag=True,
              help="Only the redirector's member and its public URL (for the traffic "
                   "workflow, which publishes weights there).")
@click.pass_obj
def ci_matrix(obj: Context, changed_since: str | None, terraform_only: bool,
              ramping: bool, redirector: bool) -> None:
    """Print the JSON matrix of deployable members for GitHub Actions `fromJSON`.

    {"include": [{"member", "cloud", "terraform", "kubernetes_version", "staging", ...}]},
    staging (members that are not routed) first, external members never; "drained" says
    whether a member is out of rotation after an incident (CD still deploys it). One line on
    stdout; why each member was chosen goes to stderr. A REF git does not know: exit 2.
    """
    fed = obj.federation()
    runner = obj.runner(plumbing=True)
    emit(obj, commands.ci_matrix(fed, runner=runner, changed_since_ref=changed_since,
                                 ramping=ramping, terraform_only=terraform_only,
                                 redirector=redirector))


COMMANDS: list[click.Command] = [ci_matrix]
