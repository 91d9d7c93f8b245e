"""Click command shadow: compare deploy.py's own dry run with federation-deploy's plan."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context, confirm_or_abort
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import member_argument
from federation_deploy.commands import shadow as commands


@click.command("shadow")
@member_argument
@click.option("--without-secrets", is_flag=True,
              help="Leave out the secret values files (the stand-in in their place) and "
                   "compare deploy.py's secret files by path only: for pull requests "
                   "without the git-crypt key.")
@click.option("--yes", "-y", is_flag=True,
              help="Run deploy.py without asking (CI; never asked where $CI is set).")
@click.pass_obj
def shadow(obj: Context, member: str, without_secrets: bool, yes: bool) -> None:
    """Compare the repository's own `deploy.py MEMBER --dry-run --local` with our plan.

    Opt-in: it runs the adopted repository's deploy script (with cert-manager.env sourced)
    in its dry-run mode, which prints commands and touches no cluster; it says so and asks
    first unless --yes. It reads the commands printed and compares them with MEMBER's plan:
    releases, charts and versions, namespaces, values files and the merged values (secret
    values compared, never shown), the steps and their order. Each difference is marked
    intended (documented in the README) or not. Exit 0 when every difference is intended,
    3 when one is not.
    """
    run = commands.prepare(obj.federation(), member)
    obj.progress(f"shadow {run.describe()}")
    confirm_or_abort(f"Run {commands.DEPLOY_SCRIPT} {member} --dry-run --local?", yes)
    emit(obj, commands.shadow(run, runner=obj.runner(), without_secrets=without_secrets))


COMMANDS: list[click.Command] = [shadow]
