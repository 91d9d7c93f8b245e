"""Click commands `traffic` and `ramp` (thin: parse options, call commands.traffic and
commands.ramp, print)."""

from __future__ import annotations

import contextlib
import shlex
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from federation_deploy.cli.context import Context, confirm_or_abort
from federation_deploy.cli.drain import COMMANDS as INCIDENT_COMMANDS
from federation_deploy.cli.drain import SETTLE_TIMEOUT
from federation_deploy.cli.github import append_step_summary, in_github_actions
from federation_deploy.cli.params import DURATION, POSITIVE_DURATION, member_argument
from federation_deploy.cli.step_summary import ramp_markdown
from federation_deploy.commands import ramp as ramp_commands
from federation_deploy.commands import traffic as traffic_commands
from federation_deploy.config import FEDERATION_FILE, load_federation
from federation_deploy.config.schema import MAX_WEIGHT
from federation_deploy.durations import Duration, format_duration
from federation_deploy.errors import (
    EXIT_FAILED,
    FederationDeployError,
    UsageError,
    VerificationError,
)
from federation_deploy.signals import signal_of
from federation_deploy.traffic.formatting import OUTPUT_FORMATS, paused_text
from federation_deploy.traffic.live import check_redirector_url
from federation_deploy.traffic.publish import make_publisher, parse_publish_target
from federation_deploy.traffic.ramp.engine import RampOutcome, RampSettings
from federation_deploy.traffic.ramp.plan import RampPlan, parse_steps, resolve_plan


@click.group(invoke_without_command=True)
@click.option("--output", "-o", type=click.Choice(OUTPUT_FORMATS), default="table",
              show_default=True,
              help="Table for people, JSON or YAML for scripts (the same keys as members').")
@click.option("--redirector-url", metavar="URL",
              help="Also show the live state: in rotation, health, live weight and share, "
                   "redirects counted (from the redirector's /active_hosts and /metrics).")
@click.pass_context
def traffic(ctx: click.Context, output: str, redirector_url: str | None) -> None:
    """Weights and shares of launches per member, every ramp in progress and every drained
    member; `traffic drain|restore|set MEMBER` change one member's weight.

    share is the target percent of launches: the member's weight over the sum of the weights
    of the routed members. A ramp in progress shows its step, since when, and the last
    healthy check; a drained member since when and why.
    """
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    rows = traffic_commands.traffic_report(obj.federation(), redirector_url)
    errors = traffic_commands.live_errors(rows)
    for error in errors:
        # before the table, and even with -q: the live columns below are incomplete
        click.echo(f"warning: live state incomplete: {error}", err=True)
    if output != "table":
        click.echo(traffic_commands.traffic_data(rows, output), nl=False)
    else:
        click.echo(traffic_commands.traffic_table(rows), nl=False)
    if errors:
        raise click.exceptions.Exit(EXIT_FAILED)


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
@click.option("--to-weight", type=click.FloatRange(min=0, min_open=True, max=MAX_WEIGHT),
              metavar="W",
              help="The member's weight at 100%. [default: its target_weight in config]")
@click.option("--publish", "publish", default="helm", show_default=True, metavar="helm|file:PATH",
              help="helm: upgrade the redirector release on its member; file:PATH: write the "
                   "redirector's config.json to PATH (sandbox, tests).")
@click.option("--redirector-url", metavar="URL",
              help="The redirector to wait for (new weights reported) and to ask whether the "
                   "member is in rotation. Without it those checks are skipped.")
@click.option("--prometheus-url", metavar="URL",
              help="Also check the member's launch error rate (Prometheus HTTP API; the "
                   "launch metrics must carry a `member` label).")
@click.option("--max-error-rate", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Roll back when the launch error rate over 5 minutes exceeds this.")
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
    to_weight: float | None, publish: str, redirector_url: str | None,
    prometheus_url: str | None, max_error_rate: float, check_interval: Duration,
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
    again (or --abort). An interrupted ramp (stopped, not rolled back) resumes from config. The
    last step (100) sets the full target weight and removes the `ramp:` block.
    """
    if abort and (advance or dry_run):
        raise UsageError("--abort cannot be combined with --advance or --dry-run")
    fed = obj.federation()
    parsed_steps = parse_steps(steps) if steps is not None else None
    hold_text = None if hold is None else hold.text  # config keeps it normalised: 1h30m
    if dry_run:
        plan = resolve_plan(fed, member, parsed_steps, to_weight, hold_text)
        state = fed.members[member].ramp
        for note in plan.notes:
            obj.progress(f"note: {note}")
        if state is not None and state.rolled_back is not None:
            obj.progress(f"the ramp of {member} at step {state.step + 1} is "
                         f"{paused_text(member, state.rolled_back)}")
        elif state is not None:
            obj.progress(f"a ramp of {member} is in progress at step {state.step + 1} "
                         f"since {state.started}")
        click.echo(ramp_commands.plan_table(plan, state.step if state is not None else None),
                   nl=False)
        return

    check_redirector_url(redirector_url)
    target = parse_publish_target(publish)
    settings = RampSettings(
        redirector_url=redirector_url,
        prometheus_url=prometheus_url,
        max_error_rate=max_error_rate,
        check_interval=check_interval.seconds,
        # /active_hosts is polled as often as the member is checked, at least once a second
        poll_interval=min(1.0, check_interval.seconds),
        settle_timeout=(settle_timeout.seconds if settle_timeout is not None
                        else SETTLE_TIMEOUT[target.kind]),
        heartbeat_interval=heartbeat.seconds,
    )
    publisher = make_publisher(target, obj.runner(), obj.progress)
    if abort:
        confirm_or_abort(f"Abort the ramp of {member}: weight 0 now, published to {target}?", yes)
        outcome = ramp_commands.abort_ramp(fed, member, publisher, settings=settings,
                                           progress=obj.progress)
        _summarise(obj, member, outcome)
        click.echo(outcome.message)
        return

    def confirm(plan: RampPlan) -> None:
        state = fed.members[member].ramp
        shown = ", ".join(f"{p:g}%" for p in plan.percents)
        verb = "Advance the ramp of" if advance else "Ramp"
        where = "" if state is None else f", in progress at step {state.step + 1}"
        confirm_or_abort(f"{verb} {member} ({shown}; hold {format_duration(plan.hold_seconds)}"
                         f"{where}), publishing to {target}?", yes)

    try:
        outcome = ramp_commands.run_ramp(fed, member, publisher, steps=parsed_steps,
                                         to_weight=to_weight, hold=hold_text,
                                         settings=settings, progress=obj.progress,
                                         confirm=confirm, advance=advance)
    except KeyboardInterrupt as exc:
        for line in interrupt_lines(obj, member, click.get_current_context()):
            click.echo(line, err=True)
        # 130 for Ctrl-C, 143 for SIGTERM (a CI runner cancelling), as every other command
        raise click.exceptions.Exit(128 + signal_of(exc)) from None
    except VerificationError as exc:
        _summarise(obj, member, None, str(exc))
        raise
    _summarise(obj, member, outcome)
    click.echo(outcome.message)


def _summarise(obj: Context, member: str, outcome: RampOutcome | None,
               failure: str | None = None) -> None:
    """The ramp's result on the CI job's summary page (under GitHub Actions only)."""
    if in_github_actions():
        append_step_summary(ramp_markdown(load_federation(obj.config_dir), member, outcome,
                                          failure))


# Options a resumed or aborted ramp needs again: where to publish and what to watch. Steps,
# hold and target weight are in config's `ramp:` block, which resume and abort read.
_CARRIED = ("publish", "redirector_url", "prometheus_url", "max_error_rate", "check_interval",
            "heartbeat", "settle_timeout")


def interrupt_lines(obj: Context, member: str, ctx: click.Context) -> list[str]:
    """What an interrupted ramp says: where config left it, and the exact commands that
    resume it and abort it (the same publish target and redirector as this run)."""
    state = None
    with contextlib.suppress(FederationDeployError):
        state = load_federation(obj.config_dir).members[member].ramp
    base = ["federation-deploy"]
    if obj.config_dir != Path("config"):
        base += ["--config-dir", str(obj.config_dir)]
    base += ["ramp", member]
    carried: list[str] = []
    for name in _CARRIED:
        value = ctx.params.get(name)
        source = ctx.get_parameter_source(name)
        if value is None or source is ParameterSource.DEFAULT and name != "publish":
            continue
        carried += [f"--{name.replace('_', '-')}", str(value)]
    resume = [*base, *carried, *(["--advance"] if ctx.params.get("advance") else []), "--yes"]
    if state is None:
        # nothing written yet (or the ramp already complete): the same command starts it
        return [f"interrupted: config has no ramp of {member} in progress; run the same "
                "command again to start it:",
                "  " + shlex.join(["federation-deploy", *sys.argv[1:]])]
    where = ("before its first step" if state.step < 0
             else f"at step {state.step + 1}/{len(state.steps)} ({state.current_share:g}%)")
    return [
        f"interrupted: {obj.config_dir / FEDERATION_FILE} keeps the ramp of {member} "
        f"{where}, and those weights were published",
        "  resume: " + shlex.join(resume),
        "  abort:  " + shlex.join([*base, "--abort", *carried_for_abort(carried), "--yes"]),
    ]


def carried_for_abort(carried: list[str]) -> list[str]:
    """Abort publishes and waits for the redirector, but holds nothing and checks nothing."""
    keep = {"--publish", "--redirector-url", "--settle-timeout"}
    return [item for flag, value in zip(carried[::2], carried[1::2], strict=True)
            if flag in keep for item in (flag, value)]


for _command in INCIDENT_COMMANDS:
    traffic.add_command(_command)

COMMANDS: list[click.Command] = [traffic, ramp]
