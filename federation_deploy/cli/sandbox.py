"""Click commands of the sandbox: demo, up, down."""

from __future__ import annotations

from pathlib import Path

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.params import POSITIVE_DURATION, SuggestingGroup
from federation_deploy.durations import Duration
from federation_deploy.sandbox import federation as sb


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
    from federation_deploy.traffic.ramp import parse_steps

    parsed = tuple(s for s in parse_steps(steps) if s < 100)
    options = sb.DemoOptions(steps=parsed, hold=hold.seconds, launches=launches)
    runner = obj.runner(plumbing=True)
    measures = sb.run_demo(obj.config_dir, options, runner, obj.progress, keep=keep)
    click.echo(f"shares after the ramp of {sb.RAMP_MEMBER} to {measures[-1].percent:g}% "
               f"({measures[-1].launches} launches):")
    click.echo(sb.final_table(measures[-1]), nl=False)
    click.echo(sb.ramp_summary(obj.federation().redirector.ramp_policy))


@sandbox.command()
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path),
              default=sb.default_root, show_default="a private directory under $TMPDIR",
              help="Where the sandbox keeps its config copy, logs and state.")
@click.option("--redirector-port", type=int, default=None,
              help="Port for the redirector (default: a free one).")
@click.pass_obj
def up(obj: Context, root: Path, redirector_port: int | None) -> None:
    """Start the sandbox and leave it running; prints its URLs and environment."""
    runner = obj.runner(plumbing=True)
    state = sb.sandbox_up(obj.config_dir, root, runner, obj.progress, redirector_port)
    click.echo(f"redirector: {state.redirector_url}")
    for service in state.services:
        click.echo(f"{service.name}: {service.url}  (log {service.log})")
    click.echo("use it with:")
    click.echo(f"  export FEDERATION_DEPLOY_CONFIG_DIR={state.config_dir}")
    for key, value in state.environment.items():
        click.echo(f"  export {key}={value}")
    click.echo(f"  federation-deploy traffic --redirector-url {state.redirector_url}")
    click.echo(f"  federation-deploy ramp curvenote --to-weight 40 --hold 10s "
               f"--publish file:{state.redirector_config} "
               f"--redirector-url {state.redirector_url} --yes")
    click.echo(f"stop it with: federation-deploy sandbox down --dir {root}")


@sandbox.command()
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path),
              default=sb.default_root, show_default="a private directory under $TMPDIR",
              help="The sandbox directory given to `sandbox up`.")
@click.pass_obj
def down(obj: Context, root: Path) -> None:
    """Stop every process of a sandbox started with `up` and remove its files."""
    stopped = sb.sandbox_down(root)
    obj.progress(f"stopped {', '.join(stopped) or 'nothing'}; removed {root}")


COMMANDS: list[click.Command] = [sandbox]
