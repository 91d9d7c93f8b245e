"""Weight and share maths (pure): target shares of launches, and the weight giving a share."""

from __future__ import annotations

from collections.abc import Mapping

from federation_deploy.config import Federation, Member


def routed_weights(fed: Federation) -> dict[str, float]:
    """Weights of the members in rotation (routed), in config order."""
    return {m.name: m.weight for m in fed.members.values() if m.routed}


def shares(weights: Mapping[str, float]) -> dict[str, float]:
    """Percent of launches per member: weight / sum of weights (0 for all when the sum is 0)."""
    total = sum(weights.values())
    return {name: (100.0 * w / total if total > 0 else 0.0) for name, w in weights.items()}


def member_share(fed: Federation, member: Member) -> float | None:
    """A member's target share of launches, or None when it is not routed."""
    if not member.routed:
        return None
    return shares(routed_weights(fed))[member.name]


def plain_number(value: float) -> int | float:
    """Whole numbers as int (60, not 60.0) in the files and output people read."""
    return int(value) if float(value).is_integer() else value


def share_to_weight(share_percent: float, others_total: float) -> float:
    """The weight that gives a member exactly share_percent of launches, the others' weights
    (summing to others_total) unchanged: w / (w + others_total) = s  =>  w = s * others / (1 - s).
    """
    if not 0 <= share_percent < 100:
        raise ValueError(f"share must be in [0, 100), got {share_percent}")
    s = share_percent / 100.0
    return s * others_total / (1.0 - s)
