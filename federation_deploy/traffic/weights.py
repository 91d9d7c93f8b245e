"""Weights with one writer: the generation, compare-and-swap writes of federation.yaml, locks.

Every weight change (a ramp step, a rollback, an abort; issue 15's drain, restore and set) goes
through this module:
  1. read federation.yaml: its text and the validated federation (read_snapshot/snapshot_of);
  2. write_federation: under a lock on a sidecar file, check that the file still holds the
     text read in 1 (else WeightsConflict naming what changed), apply the edit and add one to
     `generation:`, written round-trip and atomically;
  3. publish (traffic/publish.py): under the target's own lock, read the generation published
     and refuse (check_publish) when it is newer than the one written in 2, or the same one
     with other weights; otherwise write. A refused writer puts its step 2 back (restore).
The local writer_lock lets one long writer (a ramp) refuse a second one on this machine at
once; across machines the generation does the work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from federation_deploy.config import FEDERATION_FILE, Federation, load_federation
from federation_deploy.errors import ConfigError, WeightsConflict
from federation_deploy.progress import printable
from federation_deploy.traffic.lock_files import ignore_in_git
from federation_deploy.values.redirector_config import redirector_config
from federation_deploy.yamlio import atomic_write_text, dumps_round_trip, load_round_trip

LOCK_TIMEOUT = 60.0  # a compare-and-swap holds its lock for milliseconds; a minute is a hang
# a wait on a held lock says so after this long, then every LOCK_NOTICE_INTERVAL
LOCK_NOTICE_FIRST = 1.0
LOCK_NOTICE_INTERVAL = 15.0
WRITER_LOCK = ".weights-writer.lock"

class ConfigChanged(WeightsConflict):
    """federation.yaml no longer holds the text this process read: nothing was written."""


# An edit of federation.yaml's round-trip data (comments kept), done under the lock.
Edit = Callable[[CommentedMap], None]


# --------------------------------------------------------------------------------------------
# Locks


def lock_path(path: Path) -> Path:
    """The sidecar lock file of path: `.NAME.lock` beside it (never the file itself, which is
    replaced by a rename and so cannot carry a lock)."""
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked(path: Path, timeout: float = LOCK_TIMEOUT, *, name: str = "the lock",
           progress: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive flock on path (created 0644), writing this process's pid into it so
    that a waiter can say who holds it; WeightsConflict after timeout. While waiting, progress
    hears `waiting for NAME held by pid P` after LOCK_NOTICE_FIRST, then every
    LOCK_NOTICE_INTERVAL seconds (a wait is never silent)."""
    if not path.exists():
        ignore_in_git(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        start = time.monotonic()
        deadline = start + timeout
        next_notice = start + LOCK_NOTICE_FIRST
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now >= deadline:
                    raise WeightsConflict(
                        f"{path} has been locked by {_lock_holder(fd)} for {timeout:g}s: "
                        "another weight change hangs there; try again when it is done"
                    ) from None
                if progress is not None and now >= next_notice:
                    progress(f"waiting for {name} held by {_lock_holder(fd)} ({path}, "
                             f"{now - start:.0f}s of {timeout:g}s)")
                    next_notice = now + LOCK_NOTICE_INTERVAL
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _writer_refusal(who: str, theirs: str, ours: str | None) -> str:
    """Why a second writer is refused and what to do next: abort the running ramp only when
    it is the same member's (another member's ramp is someone else's work)."""
    if theirs and theirs == ours:
        return (f"the ramp of {ours} already runs on this machine ({who}): wait for it to end, "
                f"or stop it with `federation-deploy ramp {ours} --abort` (an abort wins over "
                "a running ramp)")
    waited = f"the ramp of {theirs}" if theirs else "it"
    again = f"`federation-deploy ramp {ours}`" if ours else "this command"
    return (f"another weight writer runs on this machine ({who}): weights have one writer at "
            f"a time; when {waited} has ended (`federation-deploy traffic` shows ramps in "
            f"progress), run {again} again")


def _lock_holder(fd: int) -> str:
    """`pid P` from a lock file written by locked(), else `another process`."""
    text = os.pread(fd, 100, 0).decode("utf-8", "replace").strip()
    return f"pid {text}" if text.isdigit() else "another process"


@contextlib.contextmanager
def writer_lock(config_dir: Path, holder: str, member: str | None = None) -> Iterator[None]:
    """The one long-running weight writer (a ramp of member) on this machine: a second one is
    refused at once, naming the first and what to do. Abort (and drain) do not take it: they
    win over a ramp, which sees the change and stops."""
    path = Path(config_dir) / WRITER_LOCK
    if not path.exists():
        ignore_in_git(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lines = os.pread(fd, 500, 0).decode("utf-8", "replace").splitlines()
            who = lines[0].strip() if lines and lines[0].strip() else "unknown"
            theirs = lines[1].removeprefix("member:").strip() if len(lines) > 1 else ""
            raise WeightsConflict(_writer_refusal(who, theirs, member)) from None
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {holder}, since {since}\nmember: {member or ''}\n"
                  .encode(), 0)
        yield
    finally:
        os.close(fd)


def writer_holding(config_dir: Path) -> tuple[str, str] | None:
    """(who, member) of the ramp holding the writer lock on this machine, or None when no one
    holds it. A ramp takes the lock before it writes its `ramp:` block: while it starts
    (plan, confirmation) only the lock says that it runs."""
    path = Path(config_dir) / WRITER_LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            lines = os.pread(fd, 500, 0).decode("utf-8", "replace").splitlines()
            who = lines[0].strip() if lines and lines[0].strip() else "unknown"
            member = lines[1].removeprefix("member:").strip() if len(lines) > 1 else ""
            return who, member
        return None  # got it: nobody holds it (released when fd closes)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# federation.yaml: snapshots and the compare-and-swap write


@dataclass(frozen=True)
class ConfigSnapshot:
    """A validated federation and the text of federation.yaml it stands for: a write is
    allowed only while the file still holds that text."""

    fed: Federation
    text: str


def read_snapshot(config_dir: Path) -> ConfigSnapshot:
    """federation.yaml's text and the federation loaded from it (read again when a writer
    changed it during the load)."""
    path = Path(config_dir) / FEDERATION_FILE
    for _ in range(10):
        text = _read_text(path)
        fed = load_federation(config_dir)
        if _read_text(path) == text:
            return ConfigSnapshot(fed, text)
    raise WeightsConflict(f"{path} keeps changing while it is read: another writer is busy")


def snapshot_of(fed: Federation) -> ConfigSnapshot:
    """fed with its file's text, or WeightsConflict when the file no longer says what fed was
    loaded from (someone changed it since: a write from fed would undo that change)."""
    now = read_snapshot(fed.config_dir)
    if now.fed != fed:
        raise ConfigChanged(describe_config_change(fed, now.fed, now.text))
    return now


def changed_since(snapshot: ConfigSnapshot) -> str | None:
    """None while federation.yaml holds snapshot's text, else what changed (for a message)."""
    text = _read_text(snapshot.fed.path)
    if text == snapshot.text:
        return None
    try:
        now: Federation | None = load_federation(snapshot.fed.config_dir)
    except ConfigError:
        now = None
    return describe_config_change(snapshot.fed, now, text)


def write_federation(snapshot: ConfigSnapshot, edit: Edit, *, bump: bool = True,
                     timeout: float = LOCK_TIMEOUT) -> ConfigSnapshot:
    """Apply edit to federation.yaml if it still holds snapshot's text (compare-and-swap
    under the sidecar lock), adding one to `generation:` when bump (a weight change); return
    the new snapshot. WeightsConflict when the file changed; ConfigError (the old text put
    back) when the result is invalid."""
    fed = snapshot.fed
    path = fed.path
    with locked(lock_path(path), timeout):
        before = _read_text(path)
        if before != snapshot.text:
            try:
                now: Federation | None = load_federation(fed.config_dir)
            except ConfigError:
                now = None
            raise ConfigChanged(describe_config_change(fed, now, before))
        try:
            data = load_round_trip(path)
        except YAMLError as exc:
            raise ConfigError.single(str(path), None, "", f"YAML error: {exc}") from None
        if not isinstance(data, CommentedMap):
            raise ConfigError.single(str(path), None, "", "expected a mapping")
        edit(data)
        if bump:
            set_generation(data, fed.generation + 1)
        after = dumps_round_trip(data)
        if after == before:
            return snapshot
        atomic_write_text(path, after)
        try:
            return ConfigSnapshot(load_federation(fed.config_dir), after)
        except ConfigError:
            atomic_write_text(path, before)
            raise


def restore(written: ConfigSnapshot, previous: ConfigSnapshot,
            timeout: float = LOCK_TIMEOUT) -> bool:
    """Put previous's text back if federation.yaml still holds written's (a refused publish
    leaves no trace here); False when someone changed it since (their change is kept)."""
    path = written.fed.path
    with locked(lock_path(path), timeout):
        if _read_text(path) != written.text:
            return False
        atomic_write_text(path, previous.text)
        return True


def set_generation(data: CommentedMap, generation: int) -> None:
    """Top-level `generation: N`, added before `members:` the first time."""
    if "generation" in data:
        data["generation"] = generation
        return
    keys = list(data)
    data.insert(keys.index("members") if "members" in keys else len(keys), "generation",
                generation)


def describe_config_change(before: Federation, now: Federation | None, text: str) -> str:
    """`federation.yaml changed under this process (generation 4 read, 5 now: gamma weight
    1.0101 -> 0, gamma ramp removed)`."""
    where = str(before.path)
    if now is None:
        return f"{where} changed under this process and is now invalid"
    parts = [f"{where} changed under this process (generation {before.generation} read, "
             f"{now.generation} now"]
    changes = member_changes(before, now)
    parts.append(": " + ", ".join(changes) if changes else
                 ": no weight changed (another edit)")
    return "".join(parts) + ")"


def member_changes(before: Federation, now: Federation) -> list[str]:
    """What differs in the members' weights and ramps, one phrase per change."""
    changes: list[str] = []
    for name in dict.fromkeys([*before.members, *now.members]):
        old, new = before.members.get(name), now.members.get(name)
        if old is None or new is None:
            changes.append(f"{name} {'added' if old is None else 'removed'}")
            continue
        if old.weight != new.weight:
            changes.append(f"{name} weight {old.weight:g} -> {new.weight:g}")
        if (old.ramp is None) != (new.ramp is None):
            changes.append(f"{name} ramp {'removed (aborted)' if new.ramp is None else 'added'}")
        elif old.ramp is not None and new.ramp is not None:
            if old.ramp.step != new.ramp.step:
                changes.append(f"{name} ramp step {old.ramp.step + 1} -> {new.ramp.step + 1}")
            if old.ramp.to_weight != new.ramp.to_weight:
                changes.append(f"{name} ramp final weight {old.ramp.to_weight:g} -> "
                               f"{new.ramp.to_weight:g}")
        if (old.drained is None) != (new.drained is None):
            changes.append(f"{name} drained ({printable(new.drained.reason)})"
                           if new.drained is not None
                           else f"{name} restored")
    return changes


def _read_text(path: Path) -> str:
    return Path(path).read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# The published weights and the publish rule


@dataclass(frozen=True)
class PublishedWeights:
    """The weights a redirector config carries: its generation (None: written before
    generations, or by hand), every host's weight and ramp flag (null hosts at 0), and the
    final weight of each ramping host that has one (a config written before final weights
    has none)."""

    generation: int | None
    weights: Mapping[str, float]
    ramping: frozenset[str]
    final_weights: Mapping[str, float] = field(default_factory=dict)

    def describe(self, name: str, *, final: bool = True) -> str:
        """`5.26316 (ramp to 20)`; final=False leaves the final weight out."""
        weight = self.weights.get(name, 0.0)
        if name not in self.ramping:
            return f"{weight:g}"
        to = self.final_weights.get(name)
        return f"{weight:g} (ramp{f' to {to:g}' if final and to is not None else ''})"


def published_from_config(data: Any, fed: Federation | None = None
                          ) -> PublishedWeights | None:
    """The weights of a config.json (or `federationRedirect` values); None when data is not
    one (nothing can be compared). With fed, keyed by member names (the config's keys are
    the members' redirector host names: `redirector_host`)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("hosts"), Mapping):
        return None
    weights: dict[str, float] = {}
    ramping: set[str] = set()
    finals: dict[str, float] = {}
    hosts = data["hosts"] if fed is None else fed.by_member(data["hosts"])
    for name, host in hosts.items():
        if host is None:
            continue  # a host set to null is deleted by Helm (a generated block's leftover)
        if not isinstance(host, Mapping):
            weights[str(name)] = 0.0
            continue
        weight = host.get("weight")
        number = isinstance(weight, int | float) and not isinstance(weight, bool)
        weights[str(name)] = float(weight) if number and weight is not None else 0.0
        if host.get("ramp") is True:
            ramping.add(str(name))
            final = host.get("final_weight")
            if isinstance(final, int | float) and not isinstance(final, bool):
                finals[str(name)] = float(final)
    generation = data.get("generation")
    if isinstance(generation, bool) or not isinstance(generation, int):
        generation = None
    return PublishedWeights(generation, weights, frozenset(ramping), finals)


def weights_of(fed: Federation) -> PublishedWeights:
    """What publishing fed puts in the redirector config."""
    published = published_from_config(redirector_config(fed), fed)
    assert published is not None  # redirector_config always has hosts
    return published


def weight_differences(ours: PublishedWeights, theirs: PublishedWeights, *,
                       missing_final: bool = True) -> list[str]:
    """`gamma: 5.26316 (ramp to 20) here, 0 published`, per member that differs (absent = 0).

    missing_final=False: a ramping member published without a final weight (by a version
    before final weights) is no difference in it; the same weights otherwise."""
    found = []
    for name in dict.fromkeys([*ours.weights, *theirs.weights]):
        final = missing_final or name in theirs.final_weights
        mine, other = ours.describe(name, final=final), theirs.describe(name, final=final)
        if mine != other:
            found.append(f"{name}: {mine} here, {other} published")
    return found


def check_publish(fed: Federation, published: PublishedWeights | None, where: str) -> None:
    """Refuse (WeightsConflict, exit 1) to publish fed's weights over a newer generation, or
    over the same generation with other weights (two writers made it). Nothing published yet,
    or published without a generation (before this rule existed): allowed."""
    if published is None or published.generation is None:
        return
    ours = weights_of(fed)
    # a config published before final weights existed, at this very generation, is this
    # generation's weights (the upgrade republishes it with them), not another writer's
    differences = weight_differences(ours, published, missing_final=False)
    shown = "; ".join(differences) if differences else "the same weights"
    if published.generation > fed.generation:
        raise WeightsConflict(
            f"refused to publish generation {fed.generation} of the weights to {where}: it "
            f"serves generation {published.generation}, newer (another process or machine "
            f"changed the weights since this one read {fed.path}): {shown}. Update "
            f"federation.yaml (git pull) and run again"
        )
    if published.generation == fed.generation and differences:
        raise WeightsConflict(
            f"refused to publish generation {fed.generation} of the weights to {where}: it "
            f"already serves generation {published.generation} with other weights ({shown}): "
            "two writers made the same generation, or weights were edited by hand without "
            f"adding one to `generation:` in {fed.path}"
        )
