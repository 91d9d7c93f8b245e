"""A ramp's state in federation.yaml: the member's weight and `ramp:` block, written round-trip."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from federation_deploy.config import DRAINED_KEYS, RAMP_KEYS, DrainState, RampState
from federation_deploy.errors import ConfigError, UsageError
from federation_deploy.traffic.shares import plain_number
from federation_deploy.traffic.weights import ConfigSnapshot, write_federation

# `ramp:` keys written only while they have a value
_ONLY_WHEN_SET = frozenset({"rolled_back", "inconclusive", "evidence", "owner"})


def utc_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC to the second, `2024-05-01T12:00:00Z` (written quoted by the YAML module)."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """Read a timestamp written by utc_timestamp (or any ISO 8601 with a zone; naive = UTC)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"invalid timestamp {text!r} in the ramp block (expected ISO 8601)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def write_member(
    snapshot: ConfigSnapshot, member: str, weight: float, ramp: RampState | None,
    *, bump: bool = True,
) -> ConfigSnapshot:
    """Set members.<member>.weight and its `ramp:` block (removed when ramp is None) in
    federation.yaml, keeping comments, order and quoting; return the reloaded federation
    with the text written.

    A compare-and-swap (weights.write_federation): ConfigChanged when the file no longer holds
    snapshot's text (an abort, a hand edit, another ramp), nothing written; `generation:` one
    more when bump (a weight change; recording last_healthy is not one). The result is loaded
    and validated again: if invalid, the previous text is put back and ConfigError raised.
    """
    display = str(snapshot.fed.path)

    def edit(data: CommentedMap) -> None:
        node = _member_node(data, member, display)
        _set_weight(node, weight)
        _set_ramp(node, ramp)

    return write_federation(snapshot, edit, bump=bump)


def write_drain(
    snapshot: ConfigSnapshot, member: str, weight: float, drained: DrainState | None,
    ramp: RampState | None = None,
) -> ConfigSnapshot:
    """Set members.<member>.weight and its `drained:` block (removed when drained is None),
    round-trip, as a compare-and-swap with `generation:` one more (see write_member). ramp
    None leaves a `ramp:` block as it is (a drain pauses it); a RampState rewrites it (a
    restore resumes it)."""
    display = str(snapshot.fed.path)

    def edit(data: CommentedMap) -> None:
        node = _member_node(data, member, display)
        _set_weight(node, weight)
        if ramp is not None:
            _set_ramp(node, ramp)
        _set_drained(node, drained)

    return write_federation(snapshot, edit)


def _set_drained(node: CommentedMap, drained: DrainState | None) -> None:
    if drained is None:
        if "drained" in node:
            del node["drained"]
        return
    values: dict[str, Any] = {"reason": drained.reason, "since": drained.since,
                              "previous_weight": plain_number(drained.previous_weight)}
    block = CommentedMap()
    for key in DRAINED_KEYS:
        block[key] = values[key]
    if "drained" in node:
        node["drained"] = block
        return
    # right after the weight it explains (and a paused ramp's block, when there is one)
    keys = list(node)
    after = next((k for k in ("ramp", "target_weight", "weight") if k in node), None)
    node.insert(keys.index(after) + 1 if after is not None else len(keys), "drained", block)


def _member_node(data: Any, member: str, display: str) -> CommentedMap:
    members = data.get("members") if isinstance(data, CommentedMap) else None
    node = members.get(member) if isinstance(members, CommentedMap) else None
    if not isinstance(node, CommentedMap):
        raise ConfigError.single(display, None, f"members.{member}",
                                 "member not found while writing the ramp state")
    return node


def _set_weight(node: CommentedMap, weight: float) -> None:
    value = plain_number(weight)
    if "weight" in node:
        current = node["weight"]
        if isinstance(current, int | float) and not isinstance(current, bool) \
                and float(current) == float(weight):
            return  # keep the existing spelling (0 vs 0.0)
        node["weight"] = value
        return
    # a routed member always has a weight; keep it next to its neighbours anyway
    position = list(node).index("cloud") + 1 if "cloud" in node else len(node)
    node.insert(position, "weight", value)


def _evidence_block(evidence: Any) -> CommentedMap | None:
    if not evidence:
        return None
    block = CommentedMap()
    for key, value in evidence.items():
        block[key] = plain_number(value) if isinstance(value, float) else value
    return block


def _set_ramp(node: CommentedMap, ramp: RampState | None) -> None:
    if ramp is None:
        if "ramp" in node:
            del node["ramp"]
        return
    steps = CommentedSeq([plain_number(s) for s in ramp.steps])
    steps.fa.set_flow_style()
    values: dict[str, Any] = {
        "steps": steps,
        "step": ramp.step,
        "to_weight": plain_number(ramp.to_weight),
        "hold": ramp.hold,
        "started": ramp.started,
        "last_healthy": ramp.last_healthy,
        "rolled_back": ramp.rolled_back,
        "inconclusive": ramp.inconclusive,
        "evidence": _evidence_block(ramp.evidence),
        "owner": ramp.owner,
    }
    # written only while set: a ramp that never rolled back has no such line
    keys = [k for k in RAMP_KEYS if k not in _ONLY_WHEN_SET or values[k] is not None]
    block = node.get("ramp")
    if isinstance(block, CommentedMap):
        # update in place so comments inside the block survive
        for key in list(block):
            if key not in keys:
                del block[key]
        for key in keys:
            old = block.get(key)
            if key == "steps" and isinstance(old, list) \
                    and [float(v) for v in old] == list(ramp.steps):
                continue
            if key in block and old == values[key] and type(old) is type(values[key]):
                continue
            block[key] = values[key]
        return
    block = CommentedMap()
    for key in keys:
        block[key] = values[key]
    if "ramp" in node:  # `ramp:` with no value
        node["ramp"] = block
        return
    after = next((k for k in ("target_weight", "weight") if k in node), None)
    position = list(node).index(after) + 1 if after is not None else len(node)
    node.insert(position, "ramp", block)
