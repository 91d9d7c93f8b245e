"""Click command adopt: federation.yaml for an existing deploy repository."""

from __future__ import annotations

from pathlib import Path

import click

from federation_deploy.cli.context import Context
from federation_deploy.commands.adopt import adopt as adopt_command


@click.command("adopt")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing PATH/federation.yaml.")
@click.pass_obj
def adopt(obj: Context, path: Path, force: bool) -> None:
    """Write PATH/federation.yaml for a deploy repository in mybinder.org-deploy's layout.

    Reads deploy.py's module-level tables with Python's ast (the script is never run):
    members and their cloud and cluster (GCP_PROJECTS, GCP_ZONES, KUBECONFIG_CLUSTERS,
    AWS_DEPLOYMENTS); the redirector's hosts, weights and prime from the federationRedirect
    values in config/*.yaml; the CD order and live release names from
    .github/workflows/cd.yml; the umbrella chart (mybinder/) as a local chart release with
    each member's values files in deploy.py's order, and cert-manager with its CRDs. Secrets
    are never read.

    deploy.py's other steps (network bans, the CoreDNS patch) and cd.yml's post-deploy tests
    become `hooks:` of the members that run them, in deploy.py's order; terraform stacks
    named after a member are linked to it. A CD workflow for federation-deploy is written to
    .github/workflows/federation-deploy.yml (cd.yml is left as it is). What it cannot map is
    printed on stderr. Exit 2 when the file needs a person before `validate
    --without-secrets` accepts it (each thing named, with where to set it). An existing
    federation.yaml is kept unless --force (exit 2).
    """
    result = adopt_command(path, force=force)
    adoption = result.adoption
    if result.kept is not None:
        obj.progress(f"kept the previous file as {result.kept}")
    obj.progress(f"wrote {result.path}: {len(adoption.document['members'])} members")
    for note in adoption.notes:
        obj.progress(f"note: {note}")
    if result.workflow is not None:
        obj.progress(f"wrote {result.workflow}: CD with federation-deploy (cd.yml untouched)")
    if adoption.unmapped:
        obj.progress(f"{len(adoption.unmapped)} things adopt could not map:")
        for item in adoption.unmapped:
            click.echo(item.render(), err=True)
    if result.refused or adoption.blocking:
        obj.progress(f"{result.path.name} needs a person before validate accepts it:")
        for item in adoption.blocking:
            click.echo(f"- {item.what} ({item.where}): {item.how}", err=True)
        for problem in result.refused:
            click.echo(f"- validate --without-secrets: {problem}", err=True)
        click.get_current_context().exit(result.exit_code)


COMMANDS: list[click.Command] = [adopt]
