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

    What it cannot map (network bans, the CoreDNS patch, post-deploy tests, ...) is printed
    on stderr with the `hooks:` to express it. Then run
    `federation-deploy --config-dir PATH validate`. An existing federation.yaml is kept
    unless --force (exit 2).
    """
    result = adopt_command(path, force=force)
    adoption = result.adoption
    if result.kept is not None:
        obj.progress(f"kept the previous file as {result.kept}")
    obj.progress(f"wrote {result.path}: {len(adoption.document['members'])} members")
    for note in adoption.notes:
        obj.progress(f"note: {note}")
    if adoption.unmapped:
        obj.progress(f"{len(adoption.unmapped)} things adopt could not map:")
        for item in adoption.unmapped:
            click.echo(item.render(), err=True)


COMMANDS: list[click.Command] = [adopt]
