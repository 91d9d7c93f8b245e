"""Click command `plan` (thin: parse options, call commands.plan, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands import plan as commands


@click.command()
@click.option("--changed-since", "changed_since", metavar="REF", default=None,
              help="Compare HEAD with REF. Default: the merge base of HEAD with origin/main "
                   "(else main), which is what a merge of this branch would change.")
@click.option("-o", "--output", type=click.Choice(sorted(commands.FORMATS)), default="table",
              show_default=True,
              help="table for a terminal, markdown for the pull-request comment (CI posts it "
                   "with `federation-deploy pr comment`), json for scripts.")
@click.option("--exit-code", is_flag=True,
              help="Exit 3 when anything changes (0 when nothing does).")
@click.option("--terraform-plan", "terraform_plan", is_flag=True,
              help="Also run `terraform plan` of each touched stack at HEAD (reaches the "
                   "cloud with the credentials in the environment; off by default).")
@click.pass_obj
def plan(obj: Context, changed_since: str | None, output: str, exit_code: bool,
         terraform_plan: bool) -> None:
    """What merging HEAD would change, per member, compared with REF.

    For each member: releases added or removed, chart versions, namespaces and CRDs, the
    rendered values key by key (secret values only as changed/unchanged by key path, never
    their content), hooks, weight and launch share before -> after, the terraform files of its
    stack that changed, and whether CD would deploy it (and CD's order). Committed files only:
    both revisions are read with `git archive` (uncommitted changes are not counted).
    Git-crypt-locked secret files are compared by their git blob only, and the member is
    rendered with the secrets stand-in on both sides. With --terraform-plan a touched stack is
    also planned by terraform (the cloud's credentials must be in the environment; without
    them the plan says "not computed: no credentials"); without it the report says how to ask.
    """
    runner = obj.runner(plumbing=True)
    emit(obj, commands.plan(obj.config_dir, runner=runner, ref=changed_since, output=output,
                            exit_code=exit_code, terraform_plan=terraform_plan))


COMMANDS: list[click.Command] = [plan]
