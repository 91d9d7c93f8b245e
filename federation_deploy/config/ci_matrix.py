"""The GitHub Actions matrix of members: deploy order, and which members changed since a ref."""

from __future__ import annotations

import glob
import posixpath
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

from federation_deploy.config import FEDERATION_FILE, Federation, Member, values_patterns
from federation_deploy.config.repository import is_url
from federation_deploy.errors import ConfigError, UsageError
from federation_deploy.traffic.shares import plain_number
from federation_deploy.yamlio import loads_located, to_plain

# Member keys that only steer traffic: a change to them is published by deploying the
# redirector's member, not the member itself (a ramp step must not redeploy the member).
# A drain or restore (`drained:` and the weight) is one of those.
ROUTING_ONLY_KEYS = frozenset({"weight", "target_weight", "ramp", "drained"})
# Member keys that end up in the redirector's config.json (see values.redirector_config);
# `ramp` publishes both the host's `ramp` flag and its `final_weight` (the block's to_weight).
REDIRECTOR_KEYS = frozenset(
    {"url", "weight", "prime", "routed", "health", "versions", "ramp", "target_weight",
     "drained"}
)
# Top-level keys nothing rendered depends on (a freeze, where announcements go): a change to
# them deploys no member (`freeze`/`unfreeze` commit these, and CD must not redeploy anything).
NOTHING_RENDERED_KEYS = frozenset({"freeze", "notifications"})
# Top-level keys a terraform plan never depends on (weights, operations, rollouts).
OPERATIONS_KEYS = frozenset({"redirector", "charts", "generation", "freeze", "notifications",
                             "rollout", "rings"})
# Paths (relative to the repository root) whose change affects how every member is deployed.
PACKAGE_PATHS = ("federation_deploy/", "pyproject.toml")

MatrixEntry = dict[str, Any]
Matrix = dict[str, list[MatrixEntry]]


def staging_tier(fed: Federation) -> frozenset[str]:
    """The members CD deploys (and checks) before every other one: `ci.staging`, else the
    deployable members that are not routed and do not run the redirector. (Not being routed
    alone does not make a staging member: mybinder.org's prod runs the redirector and is no
    host of it, and it must deploy after staging, not beside it.)"""
    if fed.ci_staging is not None:
        return frozenset(fed.ci_staging)
    return frozenset(m.name for m in fed.members.values()
                     if m.deployable and not m.routed and m.name != fed.redirector.member
                     and m.name not in fed.ci_manual)


def matrix_entry(member: Member, staging: bool) -> MatrixEntry:
    """One `include` entry: what a CD job needs to know about a member, as flat strings."""
    entry: MatrixEntry = {
        "member": member.name,
        "cloud": member.cloud,
        "terraform": member.terraform.path if member.terraform else "",
        "kubernetes_version": member.kubernetes_version or "",
        "staging": staging,
        # out of rotation after an incident: CD still deploys it (that is how it gets fixed)
        "drained": member.drained is not None,
    }
    cluster = member.cluster
    if member.cloud == "gcp":
        entry.update(project=cluster.project or "", location=cluster.location or "",
                     cluster=cluster.name or "")
    elif member.cloud == "aws":
        entry.update(region=cluster.region or "", cluster=cluster.name or "")
    elif member.cloud == "kubeconfig":
        entry.update(kubeconfig=cluster.kubeconfig or "")
    return entry


def deploy_order(fed: Federation) -> list[Member]:
    """Deployable members in the CD order: those of `ci.order` first, in that order; then
    the rest, the staging tier first, then config order. (A member left out of ci.order is
    still deployed, after the listed ones, rather than refused: a new member must not
    silently drop out of CD.) The members of `ci.manual` are left out: CD does not deploy
    them."""
    deployable = [m for m in fed.members.values()
                  if m.deployable and m.name not in fed.ci_manual]
    listed = [fed.members[name] for name in fed.ci_order if name in fed.members]
    rest = [m for m in deployable if m.name not in fed.ci_order]
    staging = staging_tier(fed)
    return (listed + [m for m in rest if m.name in staging]
            + [m for m in rest if m.name not in staging])


def build_matrix(
    fed: Federation, only: Collection[str] | None = None, terraform_only: bool = False
) -> Matrix:
    """The deploy matrix of every deployable member (with a terraform stack, if asked), or of
    those named in `only`."""
    staging = staging_tier(fed)
    return {
        "include": [
            matrix_entry(m, m.name in staging) for m in deploy_order(fed)
            if (only is None or m.name in only) and (m.terraform or not terraform_only)
        ]
    }


def redirector_matrix(fed: Federation) -> Matrix:
    """One entry: the redirector's member (whose cluster a weight change publishes to) and
    the redirector's public URL (where it reports the weights it serves)."""
    member = fed.member(fed.redirector.member)
    return {"include": [{"redirector": matrix_entry(member, member.name in staging_tier(fed)),
                         "redirector_url": f"https://{fed.redirector.host}"}]}


def ramping_matrix(fed: Federation) -> Matrix:
    """Members with a ramp in progress (not paused by a drain), each with its step, the
    redirector's member (whose cluster a ramp publishes to) and the redirector's public URL
    (where it reports weights)."""
    redirector = matrix_entry(fed.member(fed.redirector.member),
                              fed.redirector.member in staging_tier(fed))
    include: list[MatrixEntry] = []
    for m in fed.members.values():
        if m.ramp is None or m.drained is not None or m.ramp.paused \
                or m.ramp.owner is not None:
            # paused by a drain or a rollback: the scheduled job leaves it alone until a
            # person restores it or runs `ramp MEMBER` again; ring 1 of a rollout (`owner:
            # rollout`) is the rollout's: `rollout --resume` drives it
            continue
        include.append({
            "member": m.name,
            "step": m.ramp.step + 1,  # 1-based for people; 0 = not started
            "steps": len(m.ramp.steps),
            "share": plain_number(m.ramp.current_share),
            "redirector": redirector,
            "redirector_url": f"https://{fed.redirector.host}",
        })
    return {"include": include}



# --------------------------------------------------------------------------------------------
# Change detection: which members a set of changed files (and federation.yaml edits) affects.


@dataclass(frozen=True)
class RepoLayout:
    """Where config and terraform live inside the git repository (posix, relative to its root)."""

    root: Path
    config: str
    terraform: str | None  # None when the terraform root is outside the repository

    @property
    def federation_file(self) -> str:
        return _join(self.config, FEDERATION_FILE)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _relative_posix(path: Path, root: Path) -> str | None:
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    text = rel.as_posix()
    return "" if text == "." else text


def _under(path: str, prefix: str) -> str | None:
    """path relative to directory prefix ("" = root), or None when it is not inside it."""
    if not prefix:
        return path
    if path.startswith(prefix + "/"):
        return path[len(prefix) + 1 :]
    return None


class Affected:
    """Members affected by a change, with the reasons (for people reading the CD log)."""

    def __init__(self, fed: Federation, terraform_only: bool = False) -> None:
        self.fed = fed
        self.terraform_only = terraform_only
        self.reasons: dict[str, list[str]] = {}

    def add(self, member: str, reason: str) -> None:
        m = self.fed.members.get(member)
        if m is None or not m.deployable:
            return  # removed or external members are never deployed
        if self.terraform_only and m.terraform is None:
            return
        reasons = self.reasons.setdefault(member, [])
        if reason not in reasons:
            reasons.append(reason)

    def add_all(self, reason: str) -> None:
        for m in self.fed.members.values():
            self.add(m.name, reason)

    def ordered(self) -> dict[str, list[str]]:
        return {m.name: self.reasons[m.name] for m in deploy_order(self.fed)
                if m.name in self.reasons}


def affected_members(
    fed: Federation,
    changed: Iterable[str],
    layout: RepoLayout,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    terraform_only: bool = False,
) -> dict[str, list[str]]:
    """Map changed repository paths to the deployable members they affect, with reasons.

    `before`/`after` are federation.yaml (plain data) at the two revisions; they are compared
    only when that file is among the changed paths, and `before=None` then means it could not
    be read at the old revision (so everything counts as changed). `terraform_only` counts
    only what changes a terraform plan: stacks, modules, the pinned version, the package.
    """
    affected = Affected(fed, terraform_only)
    changed = sorted(set(changed))
    inputs = [] if terraform_only else list(member_inputs(fed, layout))
    for path in changed:
        if path == layout.federation_file:
            _federation_changes(fed, affected, before, after, path)
        elif any(path == p or (p.endswith("/") and path.startswith(p)) for p in PACKAGE_PATHS):
            affected.add_all(f"{path} changed (the package: every member)")
        elif not terraform_only:
            for member_input in inputs:
                if glob_matches(member_input.pattern, path):
                    affected.add(member_input.member, f"{path} changed{member_input.why}")
            if (rel := _under(path, layout.config)) is not None:
                _config_file_change(fed, affected, rel, path)
        if layout.terraform is not None and (rel := _under(path, layout.terraform)) is not None:
            _terraform_change(fed, affected, rel, path)
    return affected.ordered()


def _config_file_change(fed: Federation, affected: Affected, rel: str, path: str) -> None:
    """The files of a member that no `values:` pattern names: terraform outputs, kubeconfig."""
    parts = PurePosixPath(rel).parts
    if len(parts) == 2 and parts[0] == "generated":
        for m in fed.members.values():
            if parts[1].startswith(f"{m.name}."):
                affected.add(m.name, f"{path} changed")
    elif len(parts) == 2 and parts[0] == "secrets":
        for m in fed.members.values():
            if m.cluster.kubeconfig == parts[1]:
                affected.add(m.name, f"{path} changed (its kubeconfig)")


@dataclass(frozen=True)
class MemberInput:
    """A glob (relative to the repository root) of files a member's deploy reads."""

    member: str
    pattern: str
    why: str  # appended to "PATH changed", for the CD log


def member_inputs(fed: Federation, layout: RepoLayout) -> Iterator[MemberInput]:
    """What each member's deploy reads, as globs: its releases' values files (the layered
    default or the `values:` lists, matched as patterns, so new and deleted files count
    too), the local chart directories, crds files and the files its hooks name."""
    config_dir = fed.config_dir.resolve()
    for m in fed.members.values():
        for release in m.releases:
            for pattern in values_patterns(fed, m, release):
                if (full := _in_repo(layout.config, pattern)) is not None:
                    yield MemberInput(m.name, full, "")
            if release.local_chart is not None:
                chart = _relative_posix(release.local_chart, layout.root)
                if chart:  # never the whole repository
                    yield MemberInput(m.name, glob.escape(chart) + "/**",
                                      f" (chart of release {release.name})")
            crds = release.crds if release.crds and not is_url(release.crds) else None
            if crds is not None and (full := _in_repo(layout.config, crds)) is not None:
                yield MemberInput(m.name, glob.escape(full), f" (crds of release {release.name})")
        placeholders = {**m.hook_placeholders(), "config_dir": str(config_dir)}
        for hook in m.hooks:
            for arg in hook.filled_argv(placeholders):
                named = _named_path(arg, config_dir, layout.root)
                if named is not None:
                    yield MemberInput(m.name, named, f" (named by hook {hook.name})")


def _in_repo(config: str, pattern: str) -> str | None:
    """A config-relative path or glob relative to the repository root (None: outside it)."""
    full = posixpath.normpath(_join(config, pattern))
    return None if full == ".." or full.startswith("../") else full


def _named_path(arg: str, config_dir: Path, root: Path) -> str | None:
    """The file (as itself) or directory (everything below it) that one hook argument names,
    when it exists relative to the config directory (where hooks run); `--opt=PATH` too."""
    if arg.startswith("-") and "=" in arg:
        arg = arg.split("=", 1)[1]
    if not arg:
        return None
    path = (config_dir / arg).resolve()  # an absolute arg stays itself
    if path == config_dir or not (path.is_file() or path.is_dir()):
        return None  # `.` would name every file of the repository
    rel = _relative_posix(path, root)
    if not rel:
        return None
    return glob.escape(rel) + ("/**" if path.is_dir() else "")


def glob_matches(pattern: str, path: str) -> bool:
    """Whether Path.glob(pattern) would find path (both relative, posix): segment by segment,
    so `*` never crosses a `/`, and `**` stands for any number of directories."""
    return _match_parts(PurePosixPath(pattern).parts, PurePosixPath(path).parts)


def _match_parts(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match_parts(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _match_parts(rest, parts[1:])


def _terraform_change(fed: Federation, affected: Affected, rel: str, path: str) -> None:
    stacks = {m.name: m.terraform.path.strip("/") for m in fed.members.values() if m.terraform}
    hit = False
    for name, stack in stacks.items():
        if rel.startswith(stack + "/"):
            affected.add(name, f"{path} changed (its terraform stack)")
            hit = True
    if hit:
        return
    parts = PurePosixPath(rel).parts
    if "modules" in parts[:-1]:
        # a shared module: every stack of the same tree (terraform/aws/modules -> aws/*)
        prefix = "/".join(parts[: parts.index("modules")])
        for name, stack in stacks.items():
            if not prefix or stack.startswith(prefix + "/"):
                affected.add(name, f"{path} changed (a terraform module its stack may use)")


def _federation_changes(
    fed: Federation,
    affected: Affected,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    path: str,
) -> None:
    if before is None or after is None:
        affected.add_all(f"{path} could not be compared with the old revision: every member")
        return
    for key in sorted(set(before) | set(after)):
        if key == "members" or (affected.terraform_only and key in OPERATIONS_KEYS):
            continue
        if key == "charts":
            _chart_pin_changes(fed, affected, before.get(key), after.get(key), path)
        elif before.get(key) == after.get(key) or key in NOTHING_RENDERED_KEYS:
            continue
        elif key == "generation":
            affected.add(fed.redirector.member,
                         f"{path}: generation changed (the redirector's config carries it)")
        elif key in ("rollout", "rings"):
            _rollout_changes(fed, affected, before, after, key, path)
        else:
            affected.add_all(f"{path}: {key} changed (every member)")
    old, new = _members_block(before), _members_block(after)
    redirector = fed.redirector.member
    for name in sorted(set(old) | set(new)):
        was, now = old.get(name), new.get(name)
        if was == now:
            continue
        was_map, now_map = _mapping(was), _mapping(now)
        keys = _changed_keys(was_map, now_map)
        if affected.terraform_only:
            if name in new and (name not in old or "terraform" in keys):
                affected.add(name, f"{path}: member {name}'s terraform changed")
            continue
        if name not in old:
            affected.add(name, f"{path}: member {name} added")
        elif name not in new:
            pass  # a removed member is not deployed; its routing change is handled below
        elif not isinstance(was, Mapping) or not isinstance(now, Mapping):
            affected.add(name, f"{path}: member {name} changed")
        elif keys - ROUTING_ONLY_KEYS:
            affected.add(name, f"{path}: member {name} changed ({', '.join(sorted(keys))})")
        routed = _routed(was_map) or _routed(now_map)
        if routed and (name not in old or name not in new or keys & REDIRECTOR_KEYS):
            what = ("added" if name not in old else "removed" if name not in new
                    else "routing changed (" + ", ".join(sorted(keys & REDIRECTOR_KEYS)) + ")")
            affected.add(redirector, f"{path}: member {name} {what} (the redirector's hosts)")


def _rollout_changes(fed: Federation, affected: Affected, before: Mapping[str, Any],
                     after: Mapping[str, Any], key: str, path: str) -> None:
    """`rollout:` (or `rings:`) changed. Render depends on it in two ways: a member not yet
    upgraded runs the rollout's `from` version of its chart (config.rings.
    versions_during_rollout), and the redirector's config carries the versions accepted while
    ring 1 and 2 run (its `versions_key` may come from `rings:`). So: the members whose
    version of a release changes, and the redirector's member (one member, whatever changed
    in the rollout)."""
    if _mapping(after.get("rollout")) or _mapping(before.get("rollout")):
        affected.add(fed.redirector.member,
                     f"{path}: {key} changed (the versions the redirector accepts)")
    if key != "rollout":
        return  # `rings:` alone changes no member's version
    old_versions = _rollout_versions(before)
    new_versions = _rollout_versions(after)
    for member, release in ((m, r) for m in fed.members.values() for r in m.releases):
        if release.pin is None or release.overrides_pin:
            continue
        name = member.name
        if old_versions(name, release.pin) != new_versions(name, release.pin):
            affected.add(name, f"{path}: rollout changed (the version of release "
                               f"{release.name})")


def _rollout_versions(doc: Mapping[str, Any]) -> Callable[[str, str], Any]:
    """version(member, chart, doc): the version a member runs of a pinned chart under doc's
    rollout: `from` while it is not in `upgraded`, else the pin of `charts:`."""
    rollout = _mapping(doc.get("rollout"))
    upgraded = rollout.get("upgraded") or ()
    upgraded = upgraded if isinstance(upgraded, list) else ()

    def version(member: str, chart: str) -> Any:
        if rollout and rollout.get("chart") == chart and member not in upgraded:
            return rollout.get("from")
        return _mapping(_mapping(doc.get("charts")).get(chart)).get("version")

    return version


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _changed_keys(was: Mapping[str, Any], now: Mapping[str, Any]) -> set[str]:
    """The keys whose values differ between two versions of a block (added, removed, changed)."""
    return {k for k in set(was) | set(now) if was.get(k) != now.get(k)}


def _chart_pin_changes(fed: Federation, affected: Affected, old: Any, new: Any,
                       path: str) -> None:
    """A changed `charts:` entry redeploys the members whose releases use it; a version bump
    spares a member that overrides the version on its release (staging ahead of the others)."""
    old, new = _mapping(old), _mapping(new)
    for name in sorted(set(old) | set(new)):
        was, now = old.get(name), new.get(name)
        if was == now:
            continue
        only_version = _changed_keys(_mapping(was), _mapping(now)) == {"version"}
        for member, release in fed.releases_of_chart(str(name)):
            if only_version and release.overrides_pin:
                continue
            affected.add(member.name, f"{path}: chart {name} changed (release {release.name})")


def _members_block(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(doc.get("members"))


def _routed(block: Mapping[str, Any]) -> bool:
    return bool(block) and block.get("routed", True) is not False


# --------------------------------------------------------------------------------------------
# From what git said (commands/ci_matrix.py asks it, through actions/git.py) to a matrix.


def repo_layout(fed: Federation, root: Path) -> RepoLayout:
    """Where the config and terraform directories are inside the git repository at root."""
    config = _relative_posix(fed.config_dir, root)
    if config is None:  # pragma: no cover - git said the config is inside root
        raise UsageError(f"{fed.config_dir} is outside the git repository {root}")
    return RepoLayout(root=root, config=config,
                      terraform=_relative_posix(fed.terraform_root, root))


def federation_data(text: str | None, display: str) -> dict[str, Any] | None:
    """federation.yaml text at some revision as plain data; None when absent or unreadable."""
    if text is None:
        return None
    try:
        data = to_plain(loads_located(text, display))
    except ConfigError:
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class ChangedMatrix:
    matrix: Matrix
    reasons: dict[str, list[str]]
    commit: str
    files: tuple[str, ...]


def changed_matrix(
    fed: Federation,
    layout: RepoLayout,
    commit: str,
    files: Sequence[str],
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    terraform_only: bool = False,
) -> ChangedMatrix:
    """The deploy matrix restricted to the members that files changed since commit affect
    (before/after: federation.yaml at commit and at HEAD, read when it is among files)."""
    reasons = affected_members(fed, files, layout, before, after, terraform_only)
    return ChangedMatrix(matrix=build_matrix(fed, reasons, terraform_only), reasons=reasons,
                         commit=commit, files=tuple(files))


def describe_reasons(reasons: Mapping[str, Sequence[str]]) -> list[str]:
    """Human lines explaining the choice, for stderr."""
    if not reasons:
        return ["no member is affected by the changes"]
    lines = []
    for member, why in reasons.items():
        lines.append(f"{member}: {why[0]}" + (f" (+{len(why) - 1} more)" if len(why) > 1 else ""))
    return lines

