"""Click command `adopt` (thin: parse options, call commands.adopt, print)."""

from __future__ import annotations

from pathlib import Path

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands import adopt as commands


@click.command("adopt")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True,
              help="Overwrite an existing PATH/federation.yaml and CD workflow (each kept "
                   "first as a numbered .orig copy).")
@click.option("--package", metavar="SPEC", default=commands.PACKAGE, show_default=True,
              help="What the CD workflow pip-installs: a version pin, a git URL, a path.")
@click.option("--redirector-member", metavar="NAME",
              help="The member whose federationRedirect values are the federation's "
                   "redirector, when adopt cannot tell (it never guesses: exit 2 says so).")
@click.pass_obj
def adopt(obj: Context, path: Path, force: bool, package: str,
          redirector_member: str | None) -> None:
    """Write PATH/federation.yaml for a deploy repository in mybinder.org-deploy's layout.

    Reads deploy.py's module-level tables with Python's ast (the script is never run):
    members and their cloud and cluster (GCP_PROJECTS, GCP_ZONES, KUBECONFIG_CLUSTERS,
    AWS_DEPLOYMENTS); the redirector's hosts, weights and prime from the federationRedirect
    values in config/*.yaml (of the one member, not staging, whose redirector routes to other
    members; when that is not one member, exit 2 until --redirector-member names it); the CD
    order and live release names from
    .github/workflows/cd.yml; the umbrella chart (mybinder/) as a local chart release with
    each member's values files in deploy.py's order, and cert-manager with its CRDs. Secrets
    are never read.

    deploy.py's other steps (network bans, the CoreDNS patch) and cd.yml's post-deploy tests
    become `hooks:` of the members that run them, in deploy.py's order; terraform stacks
    named after a member are linked to it. A CD workflow for federation-deploy is written to
    .github/workflows/federation-deploy.yml (cd.yml is left as it is). What it cannot map is
    printed on stderr. Exit 2 when the file needs a person before `validate
    --without-secrets` accepts it (each thing named, with where to set it). An existing
    federation.yaml is kept unless --force (exit 2); --force keeps each file it replaces as
    FILE.orig, FILE.orig.1, ... (never overwritten).
    """
    emit(obj, commands.adopt(path, force=force, package=package,
                             redirector_member=redirector_member))


COMMANDS: list[click.Command] = [adopt]
