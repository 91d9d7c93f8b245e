"""Click commands `traffic drain`, `traffic restore`, `traffic set` (thin: parse options, call
commands.drain, print)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from federation_deploy.cli.context import Context, confirm_or_abort
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import POSITIVE_DURATION, WEIGHT, member_argument
from federation_deploy.commands import drain as commands
from federation_deploy.durations import Duration

F = TypeVar("F", bound=Callable[..., Any])


PUBLISH_HELP = ("helm: upgrade the redirector release on its member; file:PATH: write the "
                "redirector's config.json to PATH (tests). [default: helm; in a sandbox "
                "(`sandbox up`), its own redirector's file, and helm is refused]")


def publish_options(command: F) -> F:
    """Where the change is published and which redirector is waited for (as `ramp`)."""
    for option in reversed((
        click.option("--publish", "publish", metavar="helm|file:PATH", help=PUBLISH_HELP),
        click.option("--redirector-url", metavar="URL",
                     help="The redirector to wait for until it serves the new weights. "
                          "Without it the change is published and not waited for "
                          "[default: none; in a sandbox, its redirector]."),
        click.option("--settle-timeout", type=POSITIVE_DURATION,
                     help="How long the redirector may take to serve the new weights. "
                          "[default: 5m with helm, 1m with file:]"),
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation."),
    )):
        command = option(command)
    return command


def _request(publish: str | None, redirector_url: str | None,
             settle_timeout: Duration | None) -> commands.PublishRequest:
    return commands.PublishRequest(publish, redirector_url,
                          None if settle_timeout is None else settle_timeout.seconds)


def _confirm(yes: bool) -> Callable[[str], None]:
    return lambda question: confirm_or_abort(question, yes)


@click.command()
@member_argument
@click.option("--reason", required=True, metavar="TEXT",
              help="Why (recorded in federation.yaml's `drained:` block and the commit).")
@publish_options
@click.pass_obj
def drain(obj: Context, member: str, reason: str, publish: str | None, redirector_url: str | None,
          settle_timeout: Duration | None, yes: bool) -> None:
    """Take MEMBER out of rotation now: no new launches go to it.

    Writes weight 0 and a `drained:` block (reason, since, previous weight) to
    federation.yaml, publishes and waits for the redirector as a ramp step does. A ramp of
    MEMBER in progress is paused: the running ramp stops at its next check, and `traffic
    restore MEMBER` resumes it.
    """
    emit(obj, commands.drain(obj.federation(), member, reason,
                             _request(publish, redirector_url, settle_timeout),
                             runner=obj.runner(), progress=obj.progress, confirm=_confirm(yes)))


@click.command()
@member_argument
@publish_options
@click.pass_obj
def restore(obj: Context, member: str, publish: str | None, redirector_url: str | None,
            settle_timeout: Duration | None, yes: bool) -> None:
    """Put a drained MEMBER back: its previous weight, or its paused ramp's step.

    Removes the `drained:` block, publishes and waits for the redirector. A paused ramp is at
    its step again, its hold counted from now: continue it with `ramp MEMBER --advance` (the
    scheduled job does) or `ramp MEMBER`.
    """
    emit(obj, commands.restore(obj.federation(), member,
                               _request(publish, redirector_url, settle_timeout),
                               runner=obj.runner(), progress=obj.progress, confirm=_confirm(yes)))


@click.command(name="set")
@member_argument
@click.option("--weight", type=WEIGHT, required=True, metavar="W",
              help="The new weight (relative, like the others').")
@click.option("--reason", metavar="TEXT", help="Why (printed, and in the workflow's commit).")
@publish_options
@click.pass_obj
def set_weight(obj: Context, member: str, weight: float, reason: str | None, publish: str | None,
               redirector_url: str | None, settle_timeout: Duration | None,
               yes: bool) -> None:
    """Set MEMBER's weight deliberately, published and waited for.

    Refused on a drained member (`traffic restore`) and on a member being ramped (`ramp`,
    `ramp --abort`).
    """
    emit(obj, commands.set_weight(obj.federation(), member, weight, reason,
                                  _request(publish, redirector_url, settle_timeout),
                                  runner=obj.runner(), progress=obj.progress,
                                  confirm=_confirm(yes)))


COMMANDS: list[click.Command] = [drain, restore, set_weight]
