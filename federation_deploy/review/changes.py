"""What changes per member between two federations (REF and HEAD): releases, charts, values key
by key (secret values only as changed/unchanged), CRDs, hooks, weights and shares, terraform
files, and whether CD deploys it. Pure: the renders and git's answers come in as data."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from federation_deploy.config import Federation, Member, Release
from federation_deploy.traffic.shares import member_share, plain_number
from federation_deploy.values.render import KeyPath, RenderedRelease, describe_chart

# how long a plain value may print before it is cut (a multi-line extraConfig would drown the
# comment); the key still shows as changed
VALUE_WIDTH = 160


@dataclass(frozen=True)
class Rendered:
    """One side's render of a member: its releases by name, or why it could not be rendered."""

    releases: Mapping[str, RenderedRelease] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class ValueChange:
    """One key of one release's values. A secret's before/after are never kept: None."""

    path: str
    kind: str  # added, removed, changed; unchanged only for secret keys
    secret: bool
    before: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class ReleaseChange:
    name: str
    status: str  # added, removed, changed, unchanged
    chart: tuple[str | None, str | None]
    namespace: tuple[str | None, str | None]
    crds: tuple[str | None, str | None]
    values: tuple[ValueChange, ...] = ()

    @property
    def plain_changes(self) -> list[ValueChange]:
        return [v for v in self.values if not v.secret]

    @property
    def secret_changes(self) -> list[ValueChange]:
        return [v for v in self.values if v.secret and v.kind != "unchanged"]

    @property
    def secrets_unchanged(self) -> int:
        return sum(1 for v in self.values if v.secret and v.kind == "unchanged")

    @property
    def changed(self) -> bool:
        return self.status != "unchanged"


@dataclass(frozen=True)
class MemberChange:
    name: str
    status: str  # added, removed, changed, unchanged
    cloud: str
    releases: tuple[ReleaseChange, ...] = ()
    weight: tuple[float | None, float | None] = (None, None)
    share: tuple[float | None, float | None] = (None, None)
    routing: tuple[str, ...] = ()  # prime, routed, drained, target weight, url changes
    hooks: tuple[str, ...] = ()
    terraform_stack: str | None = None
    terraform_files: tuple[str, ...] = ()
    terraform_plan: str | None = None  # a summary, or why there is none
    locked_secrets: tuple[tuple[str, str], ...] = ()  # (file, changed|unchanged), unreadable
    not_computed: tuple[str, ...] = ()
    deployed_by_cd: bool = False
    cd_reasons: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """The one predicate of a member's change (the report, the summary line and
        --exit-code all use it): CD deploying it counts, even when its files changed without
        changing its render (a key moved between values files)."""
        return self.deployed_by_cd or self.changed_besides_cd

    @property
    def changed_besides_cd(self) -> bool:
        """What the report shows as changed: releases, values, weights, routing, hooks,
        terraform files, locked secrets (a new or removed member)."""
        return (self.status not in ("unchanged", "changed")
                or any(r.changed for r in self.releases)
                or self.weight[0] != self.weight[1] or self.share[0] != self.share[1]
                or bool(self.routing or self.hooks or self.terraform_files)
                or any(state == "changed" for _, state in self.locked_secrets))


@dataclass(frozen=True)
class Plan:
    """The whole report: each member's changes (HEAD's config order, then removed members),
    the federation-wide keys that changed, and CD's view (its order, who it deploys)."""

    ref: str
    commit: str
    head: str
    members: tuple[MemberChange, ...]
    federation: tuple[str, ...] = ()  # top-level federation.yaml keys changed
    cd_order: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.federation) or any(m.changed for m in self.members)

    @property
    def changed_members(self) -> list[str]:
        return [m.name for m in self.members if m.changed]

    def summary(self) -> str:
        """The one line that says what changes (agrees with --exit-code: `changed`)."""
        names = self.changed_members
        parts = [f"{len(names)} member(s) change ({', '.join(names)})" if names
                 else "no member changes"]
        if self.federation:
            parts.append(f"federation.yaml changes ({'; '.join(self.federation)})")
        elif not names:
            parts = ["nothing changes"]
        return "; ".join(parts)

    @property
    def cd_members(self) -> list[str]:
        return [name for name in self.cd_order
                if any(m.name == name and m.deployed_by_cd for m in self.members)]


def secret_key_paths(rendered: RenderedRelease) -> set[KeyPath]:
    """The one place plan learns which values are secret: the key paths whose final value a
    secret layer set, from the render's own provenance (values/render.py). Keep it the only
    one: a value marked secret here is never printed, nor a digest of it."""
    return set(rendered.secret_paths)


def leaves(values: Any, prefix: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """(key path, value) of every leaf: scalars, lists (whole, as Helm replaces them) and
    empty mappings."""
    if isinstance(values, dict) and values:
        for key, item in values.items():
            yield from leaves(item, (*prefix, str(key)))
    elif prefix:
        yield prefix, values


def dotted(path: KeyPath) -> str:
    """A key path as --explain takes it: dots inside a key escaped."""
    return ".".join(key.replace(".", "\\.") for key in path)


def shown(value: Any) -> str:
    text = json.dumps(value, default=str, sort_keys=True)
    if len(text) > VALUE_WIDTH:
        return f"{text[:VALUE_WIDTH]}… ({len(text)} characters)"
    return text


def values_changes(before: RenderedRelease | None,
                   after: RenderedRelease | None) -> tuple[ValueChange, ...]:
    """Key by key: plain keys that were added, removed or changed, with their values; and
    every secret key (secret on either side) as changed/unchanged/added/removed, no value."""
    old = dict(leaves(before.values)) if before else {}
    new = dict(leaves(after.values)) if after else {}
    secret = (secret_key_paths(before) if before else set()) | \
        (secret_key_paths(after) if after else set())
    changes: list[ValueChange] = []
    for path in sorted(set(old) | set(new)):
        kind = ("added" if path not in old else "removed" if path not in new
                else "unchanged" if old[path] == new[path] else "changed")
        hidden = path in secret or any(path[:n] in secret for n in range(1, len(path)))
        if hidden:
            changes.append(ValueChange(dotted(path), kind, True))
        elif kind != "unchanged":
            changes.append(ValueChange(dotted(path), kind, False,
                                       shown(old[path]) if path in old else None,
                                       shown(new[path]) if path in new else None))
    return tuple(changes)


def release_changes(before: Member | None, after: Member | None, rendered_before: Rendered,
                    rendered_after: Rendered) -> tuple[ReleaseChange, ...]:
    """Each release of the member on either side, HEAD's order first."""
    old = {r.name: r for r in (before.releases if before else ())}
    new = {r.name: r for r in (after.releases if after else ())}
    out: list[ReleaseChange] = []
    for name in [*new, *(n for n in old if n not in new)]:
        was, now = old.get(name), new.get(name)
        values = values_changes(rendered_before.releases.get(name),
                                rendered_after.releases.get(name))
        chart = (_chart(was), _chart(now))
        namespace = (was.namespace if was else None, now.namespace if now else None)
        crds = (was.crds if was else None, now.crds if now else None)
        if was is None or now is None:
            status = "added" if was is None else "removed"
        elif (chart[0] != chart[1] or namespace[0] != namespace[1] or crds[0] != crds[1]
              or any(v.kind != "unchanged" for v in values)):
            status = "changed"
        else:
            status = "unchanged"
        out.append(ReleaseChange(name, status, chart, namespace, crds, values))
    return tuple(out)


def _chart(release: Release | None) -> str | None:
    return describe_chart(release) if release is not None else None


def hook_changes(before: Member | None, after: Member | None) -> tuple[str, ...]:
    """Hooks added, removed or changed (argv, stage, attempts, timeout), by name."""
    old = {h.name: h for h in (before.hooks if before else ())}
    new = {h.name: h for h in (after.hooks if after else ())}
    lines: list[str] = []
    for name in [*new, *(n for n in old if n not in new)]:
        was, now = old.get(name), new.get(name)
        if was is None and now is not None:
            lines.append(f"added {name} (after {now.after}): {' '.join(now.argv)}")
        elif now is None and was is not None:
            lines.append(f"removed {name}")
        elif was is not None and now is not None and \
                (was.argv, was.after, was.attempts, was.timeout) != \
                (now.argv, now.after, now.attempts, now.timeout):
            what = "after " + now.after if was.after != now.after else ""
            argv = f"{' '.join(was.argv)} -> {' '.join(now.argv)}" if was.argv != now.argv \
                else ""
            detail = "; ".join(p for p in (what, argv) if p) or "attempts or timeout"
            lines.append(f"changed {name}: {detail}")
    return tuple(lines)


def routing_changes(before: Member | None, after: Member | None) -> tuple[str, ...]:
    """The routing keys besides the weight: prime, routed, drained, target weight, url."""
    if before is None or after is None:
        return ()
    lines: list[str] = []
    pairs: Sequence[tuple[str, Any, Any]] = (
        ("url", before.url, after.url),
        ("prime", before.prime, after.prime),
        ("routed", before.routed, after.routed),
        ("target_weight", before.target_weight, after.target_weight),
        ("drained", before.drained.reason if before.drained else None,
         after.drained.reason if after.drained else None),
        ("ramp step", _ramp(before), _ramp(after)),
    )
    for key, was, now in pairs:
        if was != now:
            lines.append(f"{key}: {_plain(was)} -> {_plain(now)}")
    return tuple(lines)


def _ramp(member: Member) -> str | None:
    ramp = member.ramp
    if ramp is None:
        return None
    return f"{plain_number(ramp.current_share)}% (step {ramp.step + 1} of {len(ramp.steps)})"


def _plain(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return str(plain_number(value))
    return str(value)


def terraform_files(stack: str | None, terraform_prefix: str | None,
                    changed: Sequence[str]) -> tuple[str, ...]:
    """The changed repository paths under a member's stack, and under the modules of its
    cloud's tree (terraform/aws/modules for aws/curvenote), which its stack may use."""
    if stack is None or terraform_prefix is None:
        return ()
    base = f"{terraform_prefix}/" if terraform_prefix else ""
    own = f"{base}{stack.strip('/')}/"
    tree = stack.strip("/").split("/")[0]
    modules = f"{base}{tree}/modules/"
    return tuple(p for p in changed if p.startswith(own) or p.startswith(modules))


def member_change(
    name: str,
    before_fed: Federation | None,
    after_fed: Federation,
    rendered_before: Rendered,
    rendered_after: Rendered,
) -> MemberChange:
    """A member's releases, values, hooks and routing between the two sides (terraform, CD
    and locked secrets are filled in by the caller, which asked git)."""
    before = before_fed.members.get(name) if before_fed else None
    after = after_fed.members.get(name)
    either = after or before
    assert either is not None, name
    status = ("added" if before is None else "removed" if after is None else "unchanged")
    errors = tuple(e for e in (_side_error("REF", rendered_before),
                               _side_error("HEAD", rendered_after)) if e)
    change = MemberChange(
        name=name, status=status, cloud=either.cloud,
        releases=release_changes(before, after, rendered_before, rendered_after),
        weight=(before.weight if before else None, after.weight if after else None),
        share=(_share(before_fed, before), _share(after_fed, after)),
        routing=routing_changes(before, after),
        hooks=hook_changes(before, after),
        terraform_stack=either.terraform.path if either.terraform else None,
        not_computed=errors,
    )
    if status == "unchanged" and change.changed:
        change = replace(change, status="changed")
    return change


def _side_error(side: str, rendered: Rendered) -> str | None:
    return f"values at {side}: {rendered.error}" if rendered.error else None


def _share(fed: Federation | None, member: Member | None) -> float | None:
    if fed is None or member is None:
        return None
    share = member_share(fed, member)
    return None if share is None else round(share, 2)


def federation_key_changes(before: Mapping[str, Any] | None,
                           after: Mapping[str, Any] | None) -> tuple[str, ...]:
    """federation.yaml's top-level keys (besides members) that changed: charts, redirector,
    terraform, generation, ci ..."""
    if before is None or after is None:
        return ("federation.yaml could not be read at REF: every member compared as added",) \
            if after is not None and before is None else ()
    out: list[str] = []
    for key in sorted((set(before) | set(after)) - {"members"}):
        if key == "charts":
            old, new = before.get(key) or {}, after.get(key) or {}
            for chart in sorted(set(old) | set(new)):
                if old.get(chart) != new.get(chart):
                    out.append(f"charts.{chart}: {_pin(old.get(chart))} -> {_pin(new.get(chart))}")
        elif before.get(key) != after.get(key):
            out.append(f"{key} changed")
    return tuple(out)


def _pin(entry: Any) -> str:
    if not isinstance(entry, Mapping):
        return "none"
    return str(entry.get("version", "?"))
