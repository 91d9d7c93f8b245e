"""The operations blocks of federation.yaml read and judged: `freeze:` (is it in force at a
given time, and what a refusal says) and `notifications:` (pure: the time is passed in)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from federation_deploy import progress
from federation_deploy.config import schema
from federation_deploy.config.model import Federation, FreezeState, Location, NotificationSettings
from federation_deploy.yamlio import LocatedMap, line_of

if TYPE_CHECKING:
    from federation_deploy.config.problems import Checker

# a freeze's free text (reason, who) is shown at most this long
SHOWN_LENGTH = 300


def printable(text: str, limit: int = SHOWN_LENGTH) -> str:
    """A freeze's free text as it may be printed: progress.printable, the one sanitiser of
    free text (drain reasons, freeze reasons, members' answers), at most limit characters."""
    return progress.printable(text, limit)


def parse_until(text: str) -> datetime | None:
    """An ISO 8601 time with a zone (Z or +hh:mm), as a UTC datetime; None when it is not one
    (a time without a zone is refused: `until` must mean the same everywhere)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """`2024-05-03T12:00:00Z`: how a freeze's times are written and shown."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def active_freeze(fed: Federation, now: datetime) -> FreezeState | None:
    """The freeze in force at now (until still ahead), else None (none, or expired)."""
    freeze = fed.freeze
    return freeze if freeze is not None and now < freeze.until else None


def expired_note(fed: Federation, now: datetime) -> str | None:
    """What a command says of a freeze whose time is over (it is ignored), else None."""
    freeze = fed.freeze
    if freeze is None or now < freeze.until:
        return None
    return (f"the freeze in {freeze.location} expired at {format_time(freeze.until)} (by "
            f"{printable(freeze.who)}: {printable(freeze.reason)}): ignored; "
            "`federation-deploy unfreeze` removes it")


def refusal(freeze: FreezeState, action: str) -> str:
    """The one message of a command refused by a freeze: what, why, who, until when, how out."""
    return (f"refused: {action}: the federation is frozen until {format_time(freeze.until)} "
            f"by {printable(freeze.who)} (reason: {printable(freeze.reason)}; "
            f"{freeze.location}). Drains and restores still run; "
            "`federation-deploy unfreeze` ends the freeze early")


def read_freeze(check: Checker, root: LocatedMap) -> FreezeState | None:
    """The `freeze:` block, `until` parsed (a time without a zone or not ISO is an error at
    its file:line:key)."""
    section = schema.FREEZE
    node = check.section(root, "freeze", section)
    if node is None:
        return None
    read = {key.name: check.value(node, "freeze", key) for key in section.keys}
    until = parse_until(read["until"]) if read["until"] else None
    if read["until"] and until is None:
        check.add(node, "until", "freeze.until",
                  f"expected {section['until'].expected}, got {read['until']!r}")
    if not read["reason"] or not read["who"] or until is None:
        return None
    return FreezeState(reason=read["reason"], who=read["who"], until=until, since=read["since"],
                       location=Location(check.file, line_of(root, "freeze")))


def read_notifications(check: Checker, root: LocatedMap) -> NotificationSettings | None:
    """The `notifications:` block (None: Grafana from the environment only, no webhook)."""
    section = schema.NOTIFICATIONS
    node = check.section(root, "notifications", section)
    if node is None:
        return None
    env = section["webhook_env"]
    if "webhook_env" in node and not env.rule.ok(node["webhook_env"]):
        # never echoed: what was written there may be the webhook URL itself, a secret
        check.add(node, "webhook_env", "notifications.webhook_env",
                  f"expected {env.expected} (the value is not shown: if it is the webhook "
                  "URL, it is a secret: move it to that environment variable)")
        return None
    read = {key.name: check.value(node, "notifications", key) for key in section.keys}
    return NotificationSettings(webhook_env=read["webhook_env"], format=read["format"],
                                tags=tuple(read["tags"]), timeout=float(read["timeout"]))
