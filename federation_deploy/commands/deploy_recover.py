"""Releases stuck in a pending state (a CD run cancelled mid-upgrade leaves `pending-upgrade`,
and helm then refuses every upgrade: "another operation is in progress"): found before the
first upgrade of a deploy, and, with `deploy --recover`, rolled back to the last deployed
revision (uninstalled when it never was deployed) before the upgrades.

The decisions (stuck_revision, recovery, stuck_message) are pure and tested as data; the
deploy's release stage calls check_stuck_releases once, before its first upgrade.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from federation_deploy.config import Release
from federation_deploy.errors import VerificationError
from federation_deploy.progress import Progress

if TYPE_CHECKING:
    from federation_deploy.actions.helm import Helm, HistoryEntry

PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
# revisions a rollback may return to: the one deployed, else one that was (superseded)
_RESTORABLE = ("deployed", "superseded")


@dataclass(frozen=True)
class StuckRelease:
    """A release whose latest revision is pending, and what recovers it: a rollback to
    `back_to` (the last deployed revision), or, when none ever was, an uninstall."""

    release: Release
    revision: int
    status: str
    back_to: int | None

    @property
    def name(self) -> str:
        return self.release.helm_name

    def helm_command(self) -> str:
        """The helm command that frees it by hand."""
        if self.back_to is None:
            return shlex.join(["helm", "uninstall", self.name, "--namespace",
                               self.release.namespace])
        return shlex.join(["helm", "rollback", self.name, str(self.back_to), "--namespace",
                           self.release.namespace])

    def describe(self) -> str:
        return (f"release {self.name} (namespace {self.release.namespace}) is stuck in "
                f"{self.status} at revision {self.revision}")

    def plan(self) -> str:
        """What --recover does to it."""
        if self.back_to is None:
            return ("uninstall it (no revision was ever deployed), then install it again")
        return f"roll back to revision {self.back_to} (the last deployed), then upgrade"


def stuck_revision(release: Release, history: Sequence[HistoryEntry]) -> StuckRelease | None:
    """The release as stuck when its latest revision is pending-install/-upgrade/-rollback,
    else None (not installed, deployed, failed: helm upgrades those)."""
    if not history:
        return None
    latest = max(history, key=lambda entry: entry.revision)
    if latest.status not in PENDING:
        return None
    earlier = [e for e in history if e.revision < latest.revision]
    back_to = None
    for status in _RESTORABLE:
        found = [e.revision for e in earlier if e.status == status]
        if found:
            back_to = max(found)
            break
    return StuckRelease(release, latest.revision, latest.status, back_to)


def stuck_message(member: str, stuck: Sequence[StuckRelease],
                  options: Sequence[str] = ()) -> str:
    """Why the deploy stops, exactly, and the two ways out (the suggested command keeps the
    person's options: --release, --timeout)."""
    lines = [f"{s.describe()}: helm refuses to upgrade it (another operation is in progress: "
             "a deploy was interrupted, like a cancelled CD run)" for s in stuck]
    again = shlex.join(["federation-deploy", "deploy", member, *options, "--recover"])
    plans = "; ".join(f"{s.name}: {s.plan()}" for s in stuck)
    by_hand = "; ".join(f"`{s.helm_command()}`" for s in stuck)
    lines.append(f"nothing was upgraded. Recover with `{again}` ({plans}), or by hand: "
                 f"{by_hand}, then deploy again")
    return "\n".join(lines)


def check_stuck_releases(helm: Helm, member: str, releases: Sequence[Release], *,
                         recover: bool, timeout: str, say: Progress,
                         options: Sequence[str] = ()) -> list[StuckRelease]:
    """Before the first upgrade: every release's history read; a stuck one stops the deploy
    (VerificationError, stage releases) unless recover, which rolls each back to its last
    deployed revision (or uninstalls it), saying so first. Returns the stuck releases."""
    stuck = [found for release in releases
             if (found := stuck_revision(release, helm.history(release))) is not None]
    if not stuck:
        return []
    if not recover:
        raise VerificationError(stuck_message(member, stuck, options), stage="releases")
    for item in stuck:
        say(f"stage releases: --recover: {item.describe()}: {item.plan()}")
    for item in stuck:
        if item.back_to is None:
            helm.uninstall(item.release, timeout=timeout)
            say(f"stage releases: --recover: {item.name} uninstalled")
        else:
            helm.rollback(item.release, item.back_to, timeout=timeout)
            say(f"stage releases: --recover: {item.name} rolled back to revision "
                f"{item.back_to}")
    return stuck
