"""Click group `traffic` (thin: parse options, call commands.traffic, print); its
subcommands drain, restore and set live in cli/drain.py."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context, confirm_or_abort
from federation_deploy.cli.drain import COMMANDS as DRAIN_COMMANDS
from federation_deploy.cli.drain import publish_options
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import member_argument
from federation_deploy.commands import prime as prime_commands
from federation_deploy.commands import traffic as commands
from federation_deploy.durations import Duration


@click.group(invoke_without_command=True)
@click.option("--output", "-o", type=click.Choice(commands.OUTPUT_FORMATS), default="table",
              show_default=True,
              help="Table for people, JSON or YAML for scripts (the same keys as members').")
@click.option("--redirector-url", metavar="URL",
              help="Also show the live state: in rotation, health, live weight and share, "
                   "redirects counted (from the redirector's /active_hosts and /metrics). "
                   "[default: none; in a sandbox, its redirector]")
@click.pass_context
def traffic(ctx: click.Context, output: str, redirector_url: str | None) -> None:
    """Weights and shares of launches per member, every ramp in progress and every drained
    member; `traffic drain|restore|set MEMBER` change one member's weight, `traffic prime
    MEMBER` moves the prime role.

    share is the target percent of launches: the member's weight over the sum of the weights
    of the routed members. A ramp in progress shows its step, since when, and the last
    healthy check; a drained member since when and why.
    """
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    emit(obj, commands.traffic(obj.federation(), redirector_url, output))


@click.command(name="prime")
@member_argument
@publish_options
@click.pass_obj
def prime(obj: Context, member: str, publish: str | None, redirector_url: str | None,
          settle_timeout: Duration | None, yes: bool) -> None:
    """Make MEMBER the prime: the versions reference and the last resort.

    The redirector compares every member's /versions with the prime's, sends every launch to
    the prime when no member is healthy, and proxies other paths to it. Written to
    federation.yaml (one writer: `generation:` one more), published and waited for like a
    weight change. Refused for an unknown or external member, one not routed, drained, at
    weight 0 or being ramped. A freeze in force refuses it (exit 2, naming who froze, why
    and until when), as it refuses `traffic set`; drain and restore still run. Already the
    prime (and served as such): nothing to do, exit 0. The redirector itself falls back to
    the healthiest
    highest-weight member while the prime is unhealthy for longer than
    redirector.prime_fallback_after (its /health says which member acts and why).
    """
    request = prime_commands.PublishRequest(
        publish, redirector_url, None if settle_timeout is None else settle_timeout.seconds)
    emit(obj, prime_commands.prime(obj.federation(), member, request, runner=obj.runner(),
                                   progress=obj.progress,
                                   confirm=lambda q: confirm_or_abort(q, yes)))


for _command in [*DRAIN_COMMANDS, prime]:
    traffic.add_command(_command)

COMMANDS: list[click.Command] = [traffic]
