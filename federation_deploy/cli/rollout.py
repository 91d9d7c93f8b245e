"""Click command `rollout` (thin: parse options, call commands.rollout, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context, confirm_or_abort
from federation_deploy.cli.drain import PUBLISH_HELP
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import DURATION, POSITIVE_DURATION
from federation_deploy.commands import rollout as commands
from federation_deploy.durations import Duration


@click.command()
@click.argument("chart", required=False)
@click.argument("version", required=False)
@click.option("--publish", "publish", metavar="helm|file:PATH", help=PUBLISH_HELP)
@click.option("--redirector-url", metavar="URL",
              help="The redirector to wait for (new weights and accepted versions served) "
                   "and to ask which members are healthy. [default: none; in a sandbox, its "
                   "redirector]")
@click.option("--prometheus-url", metavar="URL",
              help="Ring 1's evidence: every member's launches, failures and launch times. "
                   "[default: redirector.prometheus_url in config]")
@click.option("--gate", type=click.Choice(["evidence", "time", "fixed", "argo"]),
              default="evidence", show_default=True,
              help="How ring 1's steps are judged: the gates of `ramp` (see `ramp --help`).")
@click.option("--probe", "probe", metavar="REPO",
              help="Launch REPO on ring 1's member during its holds, as evidence. [default: "
                   "redirector.ramp_probe in config]")
@click.option("--check-interval", type=POSITIVE_DURATION, default="5s", show_default=True,
              help="Time between health checks while ring 1 holds.")
@click.option("--heartbeat", type=DURATION, default="1m", show_default=True,
              help="While holding, say how the step is at least this often.")
@click.option("--settle-timeout", type=POSITIVE_DURATION,
              help="How long the redirector may take to serve a change. [default: 5m with "
                   "helm, 1m with file:]")
@click.option("--timeout", type=POSITIVE_DURATION, default="10m", show_default=True,
              help="helm's --timeout for each member's upgrade and rollback.")
@click.option("--dry-run", is_flag=True,
              help="Print the rings (or the rollout in progress); change nothing.")
@click.option("--resume", is_flag=True,
              help="Go on with the rollout in config (CHART VERSION may be left out), also "
                   "after a rollback paused it; without one, say so and exit 0.")
@click.option("--advance", is_flag=True,
              help="For a scheduled job: rings 0 and 2 as always, but ring 1 one step of its "
                   "ramp per run (checked, then the next share once its hold is over); "
                   "returns at once while ring 1 holds.")
@click.option("--abort", is_flag=True,
              help="Roll every upgraded member back, restore ring 1's weight, put the chart's "
                   "pin back; wins over a running rollout.")
@click.option("--allow-downgrade", is_flag=True,
              help="Roll out a VERSION older (by semver) than the chart's pin; refused "
                   "without it.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def rollout(
    obj: Context, chart: str | None, version: str | None, publish: str | None,
    redirector_url: str | None, prometheus_url: str | None, gate: str, probe: str | None,
    check_interval: Duration, heartbeat: Duration, settle_timeout: Duration | None,
    timeout: Duration, dry_run: bool, resume: bool, advance: bool, abort: bool,
    allow_downgrade: bool, yes: bool,
) -> None:
    """Roll CHART VERSION through the federation in rings (federation.yaml's `rings:`).

    The first write sets charts.CHART.version to VERSION with a `rollout:` block: members keep
    the old version until their ring. Ring 0 (staging) is deployed and verified; ring 1 (one
    member) goes to weight 0, is deployed, and is ramped back through `rings.shares` with the
    ramp's evidence gates while the redirector accepts both versions; ring 2 (the rest, in CD
    order) follows. A failing ring 1 is rolled back (helm rollback, its weight restored, the
    accepted versions withdrawn) and the rollout pauses with exit 1. Every step is a diff of
    federation.yaml; an interrupted rollout resumes with --resume; --abort wins.
    """
    request = commands.RolloutRequest(
        chart=chart, version=version,
        publish=commands.PublishRequest(
            publish, redirector_url,
            None if settle_timeout is None else settle_timeout.seconds),
        gate=gate, prometheus_url=prometheus_url, probe=probe,
        check_interval=check_interval.seconds, heartbeat=heartbeat.seconds,
        timeout=timeout.text, dry_run=dry_run, abort=abort, resume=resume, advance=advance,
        allow_downgrade=allow_downgrade,
    )
    emit(obj, commands.rollout(obj.federation(), request, runner=obj.runner(),
                               progress=obj.progress,
                               confirm=lambda question: confirm_or_abort(question, yes)))


COMMANDS: list[click.Command] = [rollout]
