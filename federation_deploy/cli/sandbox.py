"""Click commands of the sandbox: demo, up, down."""

from __future__ import annotations

from pathlib import Path

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import POSITIVE_DURATION, SuggestingGroup
from federation_deploy.commands import sandbox as commands
from federation_deploy.durations import Duration


@click.group(cls=SuggestingGroup)
def sandbox() -> None:
    """A whole federation on this machine, with no cloud account.

    moto_server stands in for AWS (terraform runs the real curvenote stack against it), helm
    renders the charts that ship offline, stand-ins answer for the members and the real
    redirector routes launches to them. `demo` runs it all once and cleans up; `up` and `down`
    keep it running for interactive use.
    """


@sandbox.command()
@click.option("--hold", type=POSITIVE_DURATION, default="3s", show_default=True,
              help="How long each ramp step is held (health-checked) before the next.")
@click.option("--launches", type=click.IntRange(100, 100_000), default=4000, show_default=True,
              help="Launches sent through the redirector to measure each step.")
@click.option("--steps", default="1,5,25", show_default=True,
              help="Ramp steps (percent of launches) for curvenote, below 100: the demo stops "
                   "at the last one, where curvenote's share of launches is on target, and "
                   "does not take the ramp's final step (100%, rendezvous again).")
@click.option("--keep", is_flag=True, help="Keep the sandbox directory (logs) afterwards.")
@click.pass_obj
def demo(obj: Context, hold: Duration, launches: int, steps: str, keep: bool) -> None:
    """Run the whole demo once: terraform against moto, render, dry-run, redirector, ramp.

    Progress on stderr, step by step with timings; the final table of target and measured
    shares per member on stdout. Every process is stopped and temporary files are removed at
    the end, also on failure or Ctrl-C.
    """
    emit(obj, commands.demo(obj.config_dir, steps=steps, hold=hold.seconds, launches=launches,
                            keep=keep, runner=obj.runner(plumbing=True), progress=obj.progress))


@sandbox.command()
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path),
              default=commands.default_root, show_default="a private directory under $TMPDIR",
              help="Where the sandbox keeps its config copy, logs and state.")
@click.option("--redirector-port", type=int, default=None,
              help="Port for the redirector (default: a free one).")
@click.pass_obj
def up(obj: Context, root: Path, redirector_port: int | None) -> None:
    """Start the sandbox and leave it running; prints its URLs and environment."""
    emit(obj, commands.up(obj.config_dir, root, redirector_port,
                          runner=obj.runner(plumbing=True), progress=obj.progress))


@sandbox.command()
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path),
              default=commands.default_root, show_default="a private directory under $TMPDIR",
              help="The sandbox directory given to `sandbox up`.")
@click.pass_obj
def down(obj: Context, root: Path) -> None:
    """Stop every process of a sandbox started with `up` and remove its files."""
    emit(obj, commands.down(root, progress=obj.progress))


@sandbox.command()
@click.argument("name")
@click.option("--healthy/--unhealthy", default=None,
              help="Its /health: ok, or failing (the redirector takes it out of rotation).")
@click.option("--fail-every", type=click.IntRange(min=0), metavar="N",
              help="Every N-th launch fails (0: none): evidence for a ramp or ring 1 to judge.")
@click.option("--version", "versions", multiple=True, metavar="KEY=VERSION",
              help="What its /versions reports for KEY (e.g. binderhub=1.2.3); repeatable, "
                   "merged with what it reports now.")
@click.pass_obj
def member(obj: Context, name: str, healthy: bool | None, fail_every: int | None,
           versions: tuple[str, ...]) -> None:
    """Make a sandbox's stand-in member NAME fail, recover, or report other versions.

    With no option, show how it behaves now. Only in a sandbox (`sandbox up`); the same as
    `curl -X PUT -d '{"failure_every": 2}' MEMBER_URL/_standin/state`.
    """
    emit(obj, commands.member(obj.federation(), name, healthy=healthy, fail_every=fail_every,
                              versions=versions))


COMMANDS: list[click.Command] = [sandbox]
