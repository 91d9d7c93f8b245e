"""Commands `freeze` and `unfreeze` (federation.yaml's `freeze:` block, written through the one
writer of traffic/weights.py), and the one check every command that changes the federation
makes first: `refuse_when_frozen(fed, "deploy gke", clock, progress)`.

A freeze stops deploys, ramps (start and --advance, the scheduled job too) and `traffic set`
(exit 2 with the reason, who and the expiry); `traffic drain` and `restore` and a ramp's
--abort still run (an incident never waits), saying a freeze is on. An expired freeze is
ignored, and said so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

from ruamel.yaml.comments import CommentedMap

from federation_deploy.actions.git import user_name
from federation_deploy.actions.notify import Event, Notifier
from federation_deploy.commands.announce import announced
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation, FreezeState
from federation_deploy.config.freeze import (
    active_freeze,
    expired_note,
    format_time,
    parse_until,
    printable,
    refusal,
)
from federation_deploy.config.schema import FREEZE_KEYS
from federation_deploy.durations import Clock, parse_duration
from federation_deploy.errors import EXIT_FAILED, ConfigError, Frozen, Problem, UsageError
from federation_deploy.progress import Progress, quiet
from federation_deploy.runner import Runner
from federation_deploy.traffic.weights import (
    Edit,
    restore,
    snapshot_of,
    write_federation,
    writer_lock,
)

_DAYS = re.compile(r"^(\d+(?:\.\d+)?)d$")
# the longest freeze: a typo (99999d) must not stop the federation's CD for good
MAX_FREEZE = timedelta(days=90)
UNTIL_EXPECTED = ("a duration from now like 2d, 36h, 90m, or an ISO 8601 time with a zone "
                  "like 2024-05-03T12:00:00Z")


# --------------------------------------------------------------------------------------------
# The check every changing command makes


def refuse_when_frozen(fed: Federation, action: str, clock: Clock | None = None,
                       progress: Progress | None = None) -> None:
    """Frozen (exit 2, with a step summary) when a freeze is in force at the clock's now;
    an expired freeze is said on progress and ignored. action names what is refused
    (`deploy gke`, `ramp gamma --advance`, `traffic set gamma`)."""
    refuse_an_invalid_freeze(fed, action)
    now = (clock or Clock()).now()
    freeze = active_freeze(fed, now)
    if freeze is not None:
        raise Frozen(refusal(freeze, action), freeze_markdown(freeze, action))
    note = expired_note(fed, now)
    if note is not None:
        (progress or quiet)(f"warning: {note}")


def refuse_an_invalid_freeze(fed: Federation, action: str) -> None:
    """ConfigError (exit 2) naming the problems of a hand-edited `freeze:` block that does not
    load: whether it is in force cannot be known, so what a freeze refuses is refused."""
    if not fed.freeze_problems:
        return
    first = fed.freeze_problems[0]
    raise ConfigError([*fed.freeze_problems, Problem(
        first.file, first.line, "freeze",
        f"{action} refused: whether this freeze is in force cannot be told. Fix the block, or "
        "`federation-deploy unfreeze` removes it; drains and restores still run")])


def freeze_notice(fed: Federation, action: str, clock: Clock | None = None) -> str | None:
    """For what a freeze lets through (drain, restore, abort): one line saying it is on (or
    that the `freeze:` block is invalid)."""
    if fed.freeze_problems:
        return (f"note: the `freeze:` block is invalid ({fed.freeze_problems[0]}); {action} "
                "goes ahead: an incident never waits for a freeze; `federation-deploy "
                "unfreeze` removes the block")
    freeze = active_freeze(fed, (clock or Clock()).now())
    if freeze is None:
        return None
    return (f"note: the federation is frozen until {format_time(freeze.until)} by "
            f"{printable(freeze.who)} ({printable(freeze.reason)}); {action} goes ahead: an "
            "incident never waits for a freeze")


def freeze_line(fed: Federation, clock: Clock | None = None) -> str | None:
    """One line for `traffic` and `members`: a freeze in force (or an invalid `freeze:`
    block, or an expired one still written), else None."""
    if fed.freeze_problems:
        return (f"freeze: the `freeze:` block is invalid ({fed.freeze_problems[0]}): deploy, "
                "ramp, set and prime refuse; `federation-deploy unfreeze` removes it")
    now = (clock or Clock()).now()
    freeze = active_freeze(fed, now)
    if freeze is not None:
        return (f"frozen until {format_time(freeze.until)} by {printable(freeze.who)} "
                f"({printable(freeze.reason)}): deploy, ramp, set and prime refuse; drain and "
                "restore run")
    note = expired_note(fed, now)
    return None if note is None else f"not frozen: {note}"


def freeze_markdown(freeze: FreezeState, action: str) -> str:
    """The refusal for a CI job's summary page."""
    def cell(text: str) -> str:
        return printable(text).replace("|", "\\|")  # a pipe would end the table cell

    return "\n".join([
        f"### refused: `{cell(action)}`: the federation is frozen", "",
        "| until | by | reason |", "|---|---|---|",
        f"| {format_time(freeze.until)} | {cell(freeze.who)} | {cell(freeze.reason)} |", "",
        "Drains and restores still run; `federation-deploy unfreeze` ends the freeze early.",
    ]) + "\n"


# --------------------------------------------------------------------------------------------
# freeze / unfreeze


def parse_until_option(text: str, now: datetime) -> datetime:
    """--until: 2d (days), a duration (36h, 90m, 1h30m), or an ISO 8601 time with a zone;
    it must be in the future, at most MAX_FREEZE ahead; a bare number (no unit) is refused."""
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        # `--until 2` would be two seconds: never what a person freezing means
        raise UsageError(f"--until {text!r}: a bare number has no unit: use 2d, 36h, 90m or "
                         "an ISO 8601 time with a zone like 2024-05-03T12:00:00Z")
    days = _DAYS.match(value)
    until: datetime | None
    if days:
        until = now + timedelta(days=float(days.group(1)))
    elif value[:1].isdigit() and not re.match(r"^\d{4}-", value):
        try:
            until = now + timedelta(seconds=parse_duration(value))
        except UsageError:
            until = None
    else:
        until = parse_until(value)
    if until is None:
        raise UsageError(f"--until {text!r}: expected {UNTIL_EXPECTED}")
    if until <= now:
        raise UsageError(f"--until {text!r} is not in the future (now: {format_time(now)})")
    if until - now > MAX_FREEZE:
        raise UsageError(f"--until {text!r} is more than {MAX_FREEZE.days} days ahead (now: "
                         f"{format_time(now)}): a freeze is at most {MAX_FREEZE.days} days; "
                         "run freeze again before it ends to extend it")
    return until


def default_who(runner: Runner, config_dir: Path, environ: Mapping[str, str] | None = None
                ) -> str:
    """Who freezes when --who is not given: $GITHUB_ACTOR (a workflow), else git's
    user.name, else the login name."""
    env = os.environ if environ is None else environ
    actor = env.get("GITHUB_ACTOR", "").strip()
    if actor:
        return actor
    return user_name(runner, config_dir) or env.get("USER", "").strip() or "unknown"


def freeze(fed: Federation, reason: str, until: str, who: str | None, *, runner: Runner,
           clock: Clock | None = None, progress: Progress = quiet,
           notifier: Notifier | None = None, replace: bool = False) -> CommandResult:
    """Write (or replace) the `freeze:` block: reason, who, until, since. A freeze in force
    by someone else is replaced only with replace (one person's freeze never silently ends
    another's); the same person may change (extend, shorten) their own."""
    now = (clock or Clock()).now()
    if not reason.strip():
        raise UsageError("--reason must say why the federation is frozen")
    moment = parse_until_option(until, now)
    person = (who or "").strip() or default_who(runner, fed.config_dir)
    values = {"reason": reason.strip(), "who": person, "until": format_time(moment),
              "since": format_time(now)}
    if fed.freeze_problems and not replace:
        refuse_an_invalid_freeze(fed, "freeze (without --replace)")
    replaced = active_freeze(fed, now)
    if replaced is not None and replaced.who.strip() != person and not replace:
        raise UsageError(
            f"the federation is already frozen until {format_time(replaced.until)} by "
            f"{printable(replaced.who)} (reason: {printable(replaced.reason)}; "
            f"{replaced.location}): a freeze by {printable(person)} would replace it. Ask "
            f"{printable(replaced.who)}, then run again with --replace (or `unfreeze` first)")

    def edit(data: CommentedMap) -> None:
        block = CommentedMap()
        for key in FREEZE_KEYS:
            block[key] = values[key]
        if "freeze" in data:
            data["freeze"] = block
        else:
            keys = list(data)
            data.insert(keys.index("members") if "members" in keys else len(keys), "freeze",
                        block)

    _write(fed, "freeze", edit, progress)
    shown = (f"federation frozen until {values['until']} by {printable(person)}: "
             f"{printable(values['reason'])}")
    if replaced is not None:
        shown += f" (replaces the freeze until {format_time(replaced.until)})"
    return _announced(fed, notifier, Event("freeze", "freeze", shown), shown)


def freeze_status(fed: Federation, clock: Clock | None = None) -> CommandResult:
    """`freeze --check`: the freeze in force (exit 0), or none / expired (exit 1); an invalid
    block is exit 2 (a workflow's job goes red: someone must fix it)."""
    refuse_an_invalid_freeze(fed, "freeze --check")
    now = (clock or Clock()).now()
    freeze = active_freeze(fed, now)
    if freeze is not None:
        return CommandResult(stdout=f"frozen until {format_time(freeze.until)} by "
                                    f"{printable(freeze.who)}: {printable(freeze.reason)}\n")
    note = expired_note(fed, now)
    return CommandResult(stdout=("not frozen: " + note if note else "not frozen") + "\n",
                         exit_code=EXIT_FAILED)


def unfreeze(fed: Federation, *, clock: Clock | None = None, progress: Progress = quiet,
             notifier: Notifier | None = None) -> CommandResult:
    """Remove the `freeze:` block (in force or expired)."""
    current = fed.freeze
    if current is None and fed.freeze_problems:
        _write(fed, "unfreeze", _remove_freeze, progress)
        shown = ("federation unfrozen (the invalid `freeze:` block removed: "
                 f"{fed.freeze_problems[0]})")
        return _announced(fed, notifier, Event("freeze", "unfreeze", shown), shown)
    if current is None:
        # idempotent: what the person wanted (not frozen) is the case already
        return CommandResult(stdout=f"already not frozen: {fed.path} has no `freeze:` block\n")
    now = (clock or Clock()).now()
    state = "in force" if active_freeze(fed, now) is not None else "expired"

    _write(fed, "unfreeze", _remove_freeze, progress)
    shown = (f"federation unfrozen (the freeze {state} until {format_time(current.until)} by "
             f"{printable(current.who)}: {printable(current.reason)})")
    return _announced(fed, notifier, Event("freeze", "unfreeze", shown), shown)


def _remove_freeze(data: CommentedMap) -> None:
    del data["freeze"]


def _write(fed: Federation, holder: str, edit: Edit, progress: Progress) -> None:
    """The one-writer path: this machine's writer lock, a compare-and-swap of federation.yaml
    from the text fed was loaded from, and the old text put back when the written file does
    not load as expected (or the write is interrupted). `generation:` stays: it is the
    weights' generation, and a freeze changes no weight (a bump unpublished would leave the
    redirector serving the generation before, reported as drift for the whole freeze)."""
    with writer_lock(fed.config_dir, holder):
        previous = snapshot_of(fed)
        written = write_federation(previous, edit, bump=False)
        try:
            if (written.fed.freeze is None) != (holder == "unfreeze") \
                    or written.fed.freeze_problems:
                raise UsageError(f"{fed.path}: the `freeze:` block did not come out as written")
        except BaseException:
            restore(written, previous)
            raise
    progress(f"{fed.path}: {holder} written (generation {written.fed.generation} kept: no "
             "weight changed)")


def _announced(fed: Federation, notifier: Notifier | None, event: Event,
               shown: str) -> CommandResult:
    return announced(fed, event, CommandResult(stdout=shown + "\n"), notifier)
