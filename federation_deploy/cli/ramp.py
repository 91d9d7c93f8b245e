"""Click command `ramp` (thin: parse options, call commands.ramp, print; on an interrupt, say
how to resume or abort)."""

from __future__ import annotations

import sys

import click
from click.core import ParameterSource

from federation_deploy.cli.context import Context, confirm_or_abort
from federation_deploy.cli.drain import PUBLISH_HELP
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import (
    DURATION,
    POSITIVE_DURATION,
    POSITIVE_WEIGHT,
    member_argument,
)
from federation_deploy.commands import ramp as commands
from federation_deploy.durations import Duration
from federation_deploy.signals import signal_of


@click.command()
@member_argument
@click.option("--steps", metavar="P,P,...",
              help="Percent of launches at each step, increasing; 100 = the full target "
                   "weight, always last (added if missing). Steps at or above the share the "
                   "full weight gives are dropped. [default: 1,5,10,25,50,100, or those of "
                   "the ramp in progress]")
@click.option("--hold", type=POSITIVE_DURATION,
              help="How long each step is held and checked before the next, like 30m, 1h30m, "
                   "1.5h, 90s. [default: 30m, or that of the ramp in progress]")
@click.option("--to-weight", type=POSITIVE_WEIGHT,
              metavar="W",
              help="The member's weight at 100%. [default: its target_weight in config]")
@click.option("--publish", "publish", metavar="helm|file:PATH", help=PUBLISH_HELP)
@click.option("--redirector-url", metavar="URL",
              help="The redirector to wait for (new weights reported) and to ask whether the "
                   "member is in rotation. Without it those checks are skipped [default: "
                   "none; in a sandbox, its redirector].")
@click.option("--prometheus-url", metavar="URL",
              help="Judge each step on launch evidence: every member's launches, failures "
                   "and launch times (BinderHub's binderhub_launch_time_seconds; Prometheus "
                   "HTTP API, the series carrying a `member` label). [default: "
                   "redirector.prometheus_url in config]")
@click.option("--gate", type=click.Choice(["evidence", "time", "fixed", "argo"]),
              default="evidence", show_default=True,
              help="evidence: a step passes when its launches show the member as good as the "
                   "rest (sequential tests, README); needs Prometheus or --probe, else the "
                   "ramp is refused; time: steps pass after --hold on health checks alone; "
                   "fixed: roll back above --max-error-rate over 5 minutes (no launches "
                   "pass); argo: 6 measurements 5m apart, more than 1 failed rolls back.")
@click.option("--probe", "probe", metavar="REPO",
              help="Launch REPO (a launch path like gh/binder-examples/requirements/HEAD) on "
                   "the member's own BinderHub during holds, as evidence kept apart from "
                   "users' launches; without a pre-flight, first at 0% before step 1. [default: "
                   "redirector.ramp_probe in config]")
@click.option("--probe-interval", type=POSITIVE_DURATION, default="1m", show_default=True,
              help="At most one probe this often.")
@click.option("--min-hold", type=POSITIVE_DURATION,
              help="Evidence gate: a healthy step still holds this long. [default: a third "
                   "of --hold]")
@click.option("--max-hold", type=POSITIVE_DURATION,
              help="Evidence gate: a step (or the pre-flight) still inconclusive after this "
                   "long pauses the ramp. [default: 4 times --hold]")
@click.option("--warm", type=click.IntRange(0, 1000), default=0, show_default=True,
              metavar="N",
              help="Before step 1, build the N most launched repositories of the member's "
                   "pool (the redirector's estimate; needs --redirector-url). With a pre-flight "
                   "its first pass is the warming, every launch evidence; without one, "
                   "failures are reported, not fatal.")
@click.option("--preflight", type=click.IntRange(0, 200), metavar="N",
              help="Evidence gate: before step 1, at 0% (nobody routed to the member), launch "
                   "its N most launched pool repositories (the redirector's estimate; needs "
                   "--redirector-url) on its own BinderHub, 4 at a time, judged as a step is: "
                   "failing or slow stops the ramp there. Its first pass is --warm's. 0: none. "
                   "[default: redirector.ramp_preflight in config, else 20 with a redirector]")
@click.option("--launch-rate", type=click.FloatRange(min=0, min_open=True), metavar="PER_S",
              help="With --dry-run: the federation's launches per second, to say how long "
                   "each step needs for its evidence. [default: from --prometheus-url]")
@click.option("--max-error-rate", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="--gate fixed/argo: roll back when the launch error rate over 5 minutes "
                   "exceeds this.")
@click.option("--check-interval", type=POSITIVE_DURATION, default="5s", show_default=True,
              help="Time between health checks while holding.")
@click.option("--heartbeat", type=DURATION, default="1m", show_default=True,
              help="While holding, say how the step is (healthy, time left) at the first "
                   "check this long after the last line; 0: at every check.")
@click.option("--settle-timeout", type=POSITIVE_DURATION,
              help="How long the redirector may take to report new weights. "
                   "[default: 5m with helm, 1m with file:]")
@click.option("--dry-run", is_flag=True, help="Print the plan (weights and shares of each "
              "step); change nothing.")
@click.option("--advance", is_flag=True,
              help="One step and return, for a scheduled job: check the current step and, "
                   "once its hold is over, move to the next.")
@click.option("--abort", is_flag=True, help="Weight 0 at once, published; the ramp is removed.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def ramp(
    obj: Context, member: str, steps: str | None, hold: Duration | None,
    to_weight: float | None, publish: str | None, redirector_url: str | None,
    prometheus_url: str | None, gate: str, probe: str | None, probe_interval: Duration,
    min_hold: Duration | None, max_hold: Duration | None, warm: int, preflight: int | None,
    launch_rate: float | None, max_error_rate: float, check_interval: Duration,
    heartbeat: Duration, settle_timeout: Duration | None, dry_run: bool, advance: bool,
    abort: bool, yes: bool,
) -> None:
    """Move MEMBER's share of launches up step by step, with health gates and rollback.

    Each step gives MEMBER that percent of launches (the other members keep their weights), as
    federation.yaml's `redirector.ramp_policy` says: `sticky` (the default) gives MEMBER a set
    of repositories whose estimated launches make up the share, popular ones among those it
    keeps at its full weight first, each repository on one member; `per-launch` draws every
    launch, exact but a repository lands on several members. The first progress line names the
    policy. Each step writes config/federation.yaml (the weight and a `ramp:` block: a
    reviewable diff), publishes, waits until the redirector reports the new weights, and holds
    while checking MEMBER's health. A failed check goes back to the previous step, exits 1 and
    pauses the ramp: the scheduled --advance leaves it alone until someone runs `ramp MEMBER`
    again (or --abort). With --prometheus-url or --probe, a step passes only on evidence (its
    launches against the rest of the federation's): too few launches hold it longer, up to
    --max-hold, then pause the ramp; failing or slow launches roll it back at once. With a
    redirector, the evidence gate first runs a pre-flight at 0% (--preflight): the member's
    most launched pool repositories launched on it and judged, before any user is sent. An
    interrupted ramp (stopped, not rolled back) resumes from config. The last step (100) sets
    the full target weight and removes the `ramp:` block.
    """
    request = commands.RampRequest(
        steps=steps,
        hold=None if hold is None else hold.text,  # config keeps it normalised: 1h30m
        to_weight=to_weight,
        publish=commands.PublishRequest(
            publish, redirector_url,
            None if settle_timeout is None else settle_timeout.seconds),
        prometheus_url=prometheus_url,
        gate=gate,
        probe=probe,
        probe_interval=probe_interval.seconds,
        min_hold=None if min_hold is None else min_hold.seconds,
        max_hold=None if max_hold is None else max_hold.seconds,
        warm=warm,
        preflight=preflight,
        launch_rate=launch_rate,
        max_error_rate=max_error_rate,
        check_interval=check_interval.seconds,
        heartbeat=heartbeat.seconds,
        dry_run=dry_run,
        advance=advance,
        abort=abort,
    )
    decisions: list[dict[str, object]] = []
    try:
        result = commands.ramp(obj.federation(), member, request, runner=obj.runner(),
                               progress=obj.progress,
                               confirm=lambda question: confirm_or_abort(question, yes),
                               decisions=decisions)
    except KeyboardInterrupt as exc:
        ctx = click.get_current_context()
        resume, abort_flags = carried_flags(ctx)
        said = commands.interrupted(obj.config_dir, member, resume, abort_flags,
                                    sys.argv[1:], exc)
        for line in said:
            click.echo(line, err=True)
        # the CI summary too: where it stopped, how to resume, what it decided until then
        emit(obj, commands.interrupted_summary(obj.config_dir, member, said, decisions))
        # 130 for Ctrl-C, 143 for SIGTERM (a CI runner cancelling), as every other command
        raise click.exceptions.Exit(128 + signal_of(exc)) from None
    emit(obj, result)


# Options a resumed or aborted ramp needs again: where to publish and what to watch. Steps,
# hold and target weight are in config's `ramp:` block, which resume and abort read.
_CARRIED = ("publish", "redirector_url", "prometheus_url", "gate", "probe", "probe_interval",
            "min_hold", "max_hold", "preflight", "max_error_rate", "check_interval",
            "heartbeat", "settle_timeout")


def carried_flags(ctx: click.Context) -> tuple[list[str], list[str]]:
    """The flags with which an interrupted ramp is resumed (this run's publish target and
    redirector, --advance if given) and aborted."""
    carried: list[str] = []
    for name in _CARRIED:
        value = ctx.params.get(name)
        source = ctx.get_parameter_source(name)
        if value is None or source is ParameterSource.DEFAULT and name != "publish":
            continue
        carried += [f"--{name.replace('_', '-')}", str(value)]
    resume = [*carried, *(["--advance"] if ctx.params.get("advance") else [])]
    return resume, carried_for_abort(carried)


def carried_for_abort(carried: list[str]) -> list[str]:
    """Abort publishes and waits for the redirector, but holds nothing and checks nothing."""
    keep = {"--publish", "--redirector-url", "--settle-timeout"}
    return [item for flag, value in zip(carried[::2], carried[1::2], strict=True)
            if flag in keep for item in (flag, value)]


COMMANDS: list[click.Command] = [ramp]
