"""Shared Click pieces: the one duration type, MEMBER/--release with shell completion, and
the group that suggests the command meant."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

from federation_deploy.config.schema import MAX_WEIGHT, MIN_WEIGHT
from federation_deploy.durations import (
    EXPECTED,
    Duration,
    DurationTooLong,
    duration_bound_problem,
)
from federation_deploy.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


class DurationType(click.ParamType):
    """Every time option takes this: Go's syntax (helm's) plus plain seconds; the command
    gets a Duration (seconds, and .go for helm)."""

    name = "duration"

    def __init__(self, positive: bool = False) -> None:
        self.positive = positive  # timeouts and intervals: 0 would never wait or spin

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Duration:
        if isinstance(value, Duration):
            duration = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if problem := duration_bound_problem(float(value)):
                self.fail(f"{value!r}: {problem}", param, ctx)
            duration = Duration(float(value))
        else:
            try:
                duration = Duration.parse(str(value))
            except DurationTooLong as exc:
                self.fail(f"{value!r}: {exc.problem}", param, ctx)
            except UsageError:
                self.fail(f"{value!r} is not {EXPECTED}", param, ctx)
        if self.positive and duration.seconds <= 0:
            self.fail(f"{value!r}: must be longer than 0", param, ctx)
        return duration

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"


DURATION = DurationType()
POSITIVE_DURATION = DurationType(positive=True)


class WeightType(click.FloatRange):
    """Every weight option: from 0 (or, positive, above it) to MAX_WEIGHT, a non-zero one at
    least MIN_WEIGHT, as federation.yaml's schema and the redirector take it (1e-300 was
    accepted here and written as 300 digits)."""

    name = "weight"

    def __init__(self, positive: bool = False) -> None:
        super().__init__(min=0, min_open=positive, max=MAX_WEIGHT)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        weight = super().convert(value, param, ctx)
        if 0 < weight < MIN_WEIGHT:
            self.fail(f"{value!r}: a weight other than 0 is at least {MIN_WEIGHT:g}", param, ctx)
        return weight


WEIGHT = WeightType()
POSITIVE_WEIGHT = WeightType(positive=True)


def _config_dir(ctx: click.Context) -> Path:
    """--config-dir as given on the line being completed (or its env var / default): during
    completion no callback runs, so the root context's raw params are all there is."""
    value = ctx.find_root().params.get("config_dir")
    return Path(value) if value else Path("config")


def _federation_document(ctx: click.Context) -> dict[str, Any]:
    """federation.yaml read without validation: completion must work on a config that does not
    validate yet, and must never print or fail."""
    from federation_deploy.config.schema import FEDERATION_FILE
    from federation_deploy.yamlio import load_located

    try:
        data = load_located(_config_dir(ctx) / FEDERATION_FILE)
    except Exception:  # noqa: BLE001 - a completion that raises breaks the user's shell line
        return {}
    return data if isinstance(data, dict) else {}


def member_names(ctx: click.Context) -> list[str]:
    members = _federation_document(ctx).get("members")
    return [str(name) for name in members] if isinstance(members, dict) else []


def complete_member(ctx: click.Context, _param: click.Parameter,
                    incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(name) for name in member_names(ctx) if name.startswith(incomplete)]


def complete_release(ctx: click.Context, _param: click.Parameter,
                     incomplete: str) -> list[CompletionItem]:
    """The releases of the MEMBER already on the line; of every member before one is given."""
    members = _federation_document(ctx).get("members")
    if not isinstance(members, dict):
        return []
    chosen = ctx.params.get("member")
    if chosen is None:
        # the option waiting for its value stops Click's parse before MEMBER is processed;
        # the words it left unparsed still hold it
        chosen = next((a for a in ctx.args if not a.startswith("-")), None)
    names: list[str] = []
    for name, member in members.items():
        if chosen and name != chosen or not isinstance(member, dict):
            continue
        for release in member.get("releases") or []:
            if isinstance(release, dict) and isinstance(release.get("name"), str) \
                    and release["name"] not in names:
                names.append(release["name"])
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def member_argument(func: F) -> F:
    """The MEMBER argument of every command that takes one, completed from federation.yaml."""
    return click.argument("member", shell_complete=complete_member)(func)


class SuggestingGroup(click.Group):
    """A group that answers a mistyped command with the closest one ("did you mean")."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            name = args[0] if args else ""
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            if close and not name.startswith("-"):
                raise click.UsageError(f"{exc.message.rstrip('.')}. Did you mean "
                                       f"{close[0]!r}?", ctx) from exc
            raise


release_option = click.option(
    "--release", "-r", "releases", multiple=True, metavar="NAME", shell_complete=complete_release,
    help="Only this release (repeatable). Default: every release of MEMBER, in config order.",
)
