"""Click commands of the foundation: validate, members, render."""

from __future__ import annotations

from pathlib import Path

import click

from ..commands import foundation
from ..errors import UsageError
from .context import Context


@click.command()
@click.pass_obj
def validate(obj: Context) -> None:
    """Load and check all config; change nothing.

    Checks federation.yaml (types, required and unknown keys, one prime among routed members,
    weights >= 0, https URLs), every values file (release names, YAML), chart pins (exact
    versions) and terraform pins (each stack's required_version equals the pinned version).
    Exit 0 when valid, 2 listing every problem with file, line and key.
    """
    report = foundation.validate(obj.config_dir)
    for warning in report.warnings:
        obj.progress(f"warning: {warning}")
    obj.progress(f"config valid: {report.members} members, {report.releases} releases")


@click.command()
@click.option("--output", "-o", "output", type=click.Choice(["table", "json"]),
              default="table", show_default=True, help="Table for people, JSON for scripts.")
@click.pass_obj
def members(obj: Context, output: str) -> None:
    """List the members: cloud, url, weight, share of launches, prime.

    share is the percent of launches a member gets: its weight over the sum of the weights of
    the routed members (members with `routed: false`, like staging, get none).
    """
    rows = foundation.members_rows(obj.federation())
    if output == "json":
        click.echo(foundation.members_json(rows), nl=False)
    else:
        click.echo(foundation.format_table(
            rows, ["name", "cloud", "url", "weight", "share", "prime", "ramp"]), nl=False)


@click.command()
@click.argument("member")
@click.option("--release", "-r", "releases", multiple=True, metavar="NAME",
              help="Only this release (repeatable). Default: every release of MEMBER.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write <release>.yaml files (mode 0600) here instead of stdout.")
@click.option("--show-secrets", is_flag=True,
              help="Print values from config/secrets/ instead of <redacted>.")
@click.option("--explain", metavar="KEY.PATH",
              help="Say which file and line set KEY.PATH (e.g. "
                   "binderhub.config.BinderHub.image_prefix) instead of rendering. Escape dots "
                   "inside a key with a backslash.")
@click.pass_obj
def render(obj: Context, member: str, releases: tuple[str, ...], output_dir: Path | None,
           show_secrets: bool, explain: str | None) -> None:
    """Print the merged Helm values of MEMBER's releases.

    Layers, lowest first: values/common.yaml < values/MEMBER.yaml <
    secrets/values/common.yaml < secrets/values/MEMBER.yaml < generated (terraform outputs
    saved in generated/, the redirector config). Dicts merge deeply, lists replace, null
    deletes a key. Stdout: one YAML document per release.
    """
    fed = obj.federation()
    docs = foundation.render_documents(fed, member, list(releases) or None, show_secrets)
    if explain:
        if output_dir is not None:
            raise UsageError("--explain prints to stdout; it cannot be used with --output-dir")
        key_release = explain.split(".", 1)[0]
        matching = [r for r, _ in docs if r.release.name == key_release]
        if matching:
            path = explain.split(".", 1)[1] if "." in explain else ""
            if not path:
                raise UsageError(f"--explain needs a key below the release: {explain}.KEY")
            click.echo("\n".join(matching[0].explain(path, show_secrets)))
            return
        if len(docs) == 1:
            click.echo("\n".join(docs[0][0].explain(explain, show_secrets)))
            return
        names = ", ".join(r.release.name for r, _ in docs)
        raise UsageError(f"--explain {explain}: start the path with a release name ({names}), "
                         "or pick one release with --release")
    if output_dir is not None:
        for written in foundation.write_rendered(output_dir, docs):
            obj.progress(f"wrote {written}")
        return
    click.echo("---\n".join(text for _, text in docs), nl=False)


COMMANDS: list[click.Command] = [validate, members, render]
