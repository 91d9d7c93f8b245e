"""Click commands `traffic` and `ramp` (thin: parse options, call commands.traffic and
commands.ramp, print)."""

from __future__ import annotations

import click

from ..actions.publish import make_publisher, parse_publish_target
from ..commands import ramp as ramp_commands
from ..commands import traffic as traffic_commands
from ..durations import format_duration, parse_duration
from ..errors import EXIT_FAILED, UsageError
from ..ramp.engine import RampSettings
from ..ramp.plan import RampPlan, parse_steps, resolve_plan
from ..traffic import redirector_url_problem
from .context import Context, confirm_or_abort

# The redirector hot-reloads a file within seconds; through helm the new ConfigMap reaches
# the pods only after the kubelet's sync (a minute or two).
SETTLE_TIMEOUT = {"file": 60.0, "helm": 300.0}


@click.command()
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Table for people, JSON for scripts.")
@click.option("--redirector-url", metavar="URL",
              help="Also show the live state: in rotation, health, live weight and share, "
                   "redirects counted (from the redirector's /active_hosts and /metrics).")
@click.pass_obj
def traffic(obj: Context, output: str, redirector_url: str | None) -> None:
    """Weights and shares of launches per member, and every ramp in progress.

    share is the target percent of launches: the member's weight over the sum of the weights
    of the routed members. A ramp in progress shows its step, since when, and the last
    healthy check.
    """
    rows = traffic_commands.traffic_report(obj.federation(), redirector_url)
    errors = traffic_commands.live_errors(rows)
    for error in errors:
        # before the table, and even with -q: the live columns below are incomplete
        click.echo(f"warning: live state incomplete: {error}", err=True)
    if output == "json":
        click.echo(traffic_commands.traffic_json(rows), nl=False)
    else:
        click.echo(traffic_commands.traffic_table(rows), nl=False)
    if errors:
        raise click.exceptions.Exit(EXIT_FAILED)


@click.command()
@click.argument("member")
@click.option("--steps", metavar="P,P,...",
              help="Percent of launches at each step, increasing; 100 = the full target "
                   "weight, always last (added if missing). Steps at or above the share the "
                   "full weight gives are dropped. [default: 1,5,10,25,50,100, or those of "
                   "the ramp in progress]")
@click.option("--hold", metavar="DURATION",
              help="How long each step is held and checked before the next, like 30m, 1h30m, "
                   "90s. [default: 30m, or that of the ramp in progress]")
@click.option("--to-weight", type=float, metavar="W",
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
@click.option("--check-interval", default="5s", show_default=True, metavar="DURATION",
              help="Time between health checks while holding.")
@click.option("--settle-timeout", metavar="DURATION",
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
    obj: Context, member: str, steps: str | None, hold: str | None, to_weight: float | None,
    publish: str, redirector_url: str | None, prometheus_url: str | None,
    max_error_rate: float, check_interval: str, settle_timeout: str | None, dry_run: bool,
    advance: bool, abort: bool, yes: bool,
) -> None:
    """Move MEMBER's share of launches up step by step, with health gates and rollback.

    Each step gives MEMBER exactly that percent of launches (the other members keep their
    weights; while ramping, the redirector picks MEMBER per launch, not per repository),
    writes config/federation.yaml (the weight and a `ramp:` block: a reviewable diff),
    publishes, waits until the redirector reports the new weights, and holds while checking
    MEMBER's health. A failed check goes back to the previous step and exits 1. An
    interrupted ramp resumes from config. The last step (100) sets the full target weight
    and removes the `ramp:` block.
    """
    if abort and (advance or dry_run):
        raise UsageError("--abort cannot be combined with --advance or --dry-run")
    fed = obj.federation()
    parsed_steps = parse_steps(steps) if steps is not None else None
    if hold is not None:
        parse_duration(hold)
    if dry_run:
        plan = resolve_plan(fed, member, parsed_steps, to_weight, hold)
        state = fed.members[member].ramp
        for note in plan.notes:
            obj.progress(f"note: {note}")
        if state is not None:
            obj.progress(f"a ramp of {member} is in progress at step {state.step + 1} "
                         f"since {state.started}")
        click.echo(ramp_commands.plan_table(plan, state.step if state is not None else None),
                   nl=False)
        return

    if redirector_url and (problem := redirector_url_problem(redirector_url)):
        raise UsageError(f"--redirector-url: {problem}")
    target = parse_publish_target(publish)
    settings = RampSettings(
        redirector_url=redirector_url,
        prometheus_url=prometheus_url,
        max_error_rate=max_error_rate,
        check_interval=parse_duration(check_interval),
        # /active_hosts is polled as often as the member is checked, at least once a second
        poll_interval=min(1.0, parse_duration(check_interval)),
        settle_timeout=(parse_duration(settle_timeout) if settle_timeout is not None
                        else SETTLE_TIMEOUT[target.kind]),
    )
    publisher = make_publisher(target, obj.runner(), obj.progress)
    if abort:
        confirm_or_abort(f"Abort the ramp of {member}: weight 0 now, published to {target}?", yes)
        outcome = ramp_commands.abort_ramp(fed, member, publisher, settings=settings,
                                           progress=obj.progress)
        click.echo(outcome.message)
        return

    def confirm(plan: RampPlan) -> None:
        state = fed.members[member].ramp
        shown = ", ".join(f"{p:g}%" for p in plan.percents)
        verb = "Advance the ramp of" if advance else "Ramp"
        where = "" if state is None else f", in progress at step {state.step + 1}"
        confirm_or_abort(f"{verb} {member} ({shown}; hold {format_duration(plan.hold_seconds)}"
                         f"{where}), publishing to {target}?", yes)

    outcome = ramp_commands.run_ramp(fed, member, publisher, steps=parsed_steps,
                                     to_weight=to_weight, hold=hold, settings=settings,
                                     progress=obj.progress, confirm=confirm, advance=advance)
    click.echo(outcome.message)


COMMANDS: list[click.Command] = [traffic, ramp]
