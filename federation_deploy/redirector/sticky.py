"""Sticky ramp state: decayed launch counts per repository and the RampPlan made from them."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .routing import RampClaim, RampPlan, RoutingTable, plan_claim, ramp_rank

# Defaults, measured with benchmarks/ramp_policy.py (Zipf 1.1 over 2,000 repositories): see
# the README's "How the ramp chooses" for the figures they give.
DEFAULT_CAPACITY = 1000  # repositories counted one by one; the rest is the hash-spread tail
DEFAULT_HALF_LIFE = 4000  # launches after which a launch counts half
DEFAULT_CHECK_EVERY = 100  # launches between two looks at the estimated share
# Rescale the counts before the per-launch increment grows past this (float headroom).
_RESCALE_AT = 2.0**40


class LaunchPopularity:
    """Exponentially decayed launch counts of the most launched keys, in bounded memory.

    Forward decay: launch n adds growth**n instead of multiplying every count by a decay
    factor, so a launch costs one dict update; all counts are rescaled now and then.

    A key's first launch is not counted as its own but as "novel" (Good-Turing): the launches
    of keys seen once are the best estimate of the launches of keys not seen yet, and neither
    can be pinned on a known key. That novel mass, and the launches of keys dropped to keep
    memory bounded (over 2 * capacity keys, only the `capacity` most launched are kept), make
    up the tail, which the ramp spreads over keys by hash.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, half_life: float = DEFAULT_HALF_LIFE):
        if capacity < 1 or half_life <= 0:
            raise ValueError("capacity must be >= 1 and half_life > 0")
        self.capacity = capacity
        self.half_life = half_life
        self._growth = 2.0 ** (1.0 / half_life)
        self._counts: dict[str, float] = {}  # repeat launches per key (decayed)
        self._total = 0.0  # all launches (decayed)
        self._increment = 1.0
        self.launches = 0  # launches observed since start (not decayed)

    def observe(self, key: str) -> None:
        counts = self._counts
        if key in counts:
            counts[key] += self._increment
        else:
            counts[key] = 0.0
            if len(counts) > 2 * self.capacity:
                self._prune()
        self._total += self._increment
        self._increment *= self._growth
        self.launches += 1
        if self._increment > _RESCALE_AT:
            self._rescale()

    def _rescale(self) -> None:
        factor = 1.0 / self._increment
        self._counts = {k: c * factor for k, c in self._counts.items()}
        self._total *= factor
        self._increment = 1.0

    def _prune(self) -> None:
        kept = heapq.nlargest(self.capacity, self._counts.items(), key=lambda item: item[1])
        self._counts = dict(kept)

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, key: str) -> bool:
        return key in self._counts

    def shares(self) -> tuple[dict[str, float], float]:
        """({key: estimated share of launches}, tail share); before any launch: ({}, 1.0).

        Only keys launched more than once are listed.
        """
        if self._total <= 0:
            return {}, 1.0
        scale = 1.0 / self._total
        shares = {k: c * scale for k, c in self._counts.items() if c > 0}
        return shares, max(0.0, 1.0 - math.fsum(shares.values()))


def share_tolerance(target: float) -> float:
    """How far the estimated share may drift from the target before the plan is redone.

    A dead band, so that estimation noise does not move repositories back and forth between
    members; small next to the issue's bounds (0.3 points at 1%, 1.5 at 25%).
    """
    return 0.02 * target + 0.0005


@dataclass(frozen=True)
class RampEstimate:
    """One ramp member's figures for /metrics: target and estimated share, threshold."""

    target: float
    estimate: float
    threshold: float
    excluded: int


class StickyRamp:
    """Keeps a RampPlan on target for the current routing table as launches are observed.

    Every launch is observed (also with no ramp in progress), so that a ramp that starts
    finds the estimate warm. The plan is redone when the table changes (a ramp step, a
    health change) and when, checked every `check_every` launches, a ramp member's
    estimated share has drifted out of share_tolerance.
    """

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        half_life: float = DEFAULT_HALF_LIFE,
        check_every: int = DEFAULT_CHECK_EVERY,
    ) -> None:
        self.popularity = LaunchPopularity(capacity, half_life)
        self.check_every = check_every
        self.plan = RampPlan()
        self.replans = 0
        self.estimates: dict[str, RampEstimate] = {}
        self._table: RoutingTable | None = None
        self._basis: object = None
        self._ranks: dict[str, tuple[float, ...]] = {}
        self._until_check = check_every

    def set_table(self, table: RoutingTable) -> None:
        """Adopt a new routing table: ranks are kept if they still hold, the plan is redone."""
        self._table = table
        if not table.sticky_ramp:
            self.plan, self.estimates = RampPlan(), {}
            return
        basis = table.rank_basis()
        if basis != self._basis:
            self._ranks.clear()
            self._basis = basis
        self._replan(table)

    def observe(self, key: str) -> None:
        """Count a cookie-less launch of `key` (a rendezvous key, see routing.cache_key)."""
        self.popularity.observe(key)
        self._until_check -= 1
        if self._until_check <= 0:
            self._until_check = self.check_every
            table = self._table
            if table is not None and table.sticky_ramp:
                self._check(table)

    # planning ------------------------------------------------------------------------------

    def _tracked(self, table: RoutingTable) -> tuple[list[tuple[str, tuple[float, ...], float]],
                                                     float]:
        shares, tail = self.popularity.shares()
        ranks = self._ranks
        if len(ranks) > len(shares):
            self._ranks = ranks = {k: r for k, r in ranks.items() if k in shares}
        tracked = []
        for key, share in shares.items():
            rank = ranks.get(key)
            if rank is None:
                rank = ranks[key] = tuple(ramp_rank(key, r, table.sticky) for r in table.ramps)
            tracked.append((key, rank, share))
        return tracked, tail

    def _check(self, table: RoutingTable) -> None:
        tracked, tail = self._tracked(table)
        estimates = self._estimate(table, self.plan, tracked, tail)
        self.estimates = estimates
        if any(abs(e.estimate - e.target) > share_tolerance(e.target) for e in estimates.values()):
            self._replan(table, tracked, tail)

    def _replan(
        self,
        table: RoutingTable,
        tracked: list[tuple[str, tuple[float, ...], float]] | None = None,
        tail: float = 1.0,
    ) -> None:
        if tracked is None:
            tracked, tail = self._tracked(table)
        targets = table.ramp_targets()
        claims: list[RampClaim] = []
        remaining = tracked
        for i, ramp in enumerate(table.ramps):
            target = targets[ramp.name]
            claim = plan_claim(ramp.name, target, ((k, r[i], s) for k, r, s in remaining), tail,
                               slack=share_tolerance(target) / 2)
            claims.append(claim)
            remaining = [item for item in remaining if not claim.takes(item[0], item[1][i])]
            # the next ramp member only sees the keys this one left
            tail *= 1.0 - claim.threshold
        self.plan = RampPlan(tuple(claims))
        self.replans += 1
        self.estimates = self._estimate(table, self.plan, tracked, self.popularity.shares()[1])

    @staticmethod
    def _estimate(
        table: RoutingTable,
        plan: RampPlan,
        tracked: Sequence[tuple[str, tuple[float, ...], float]],
        tail: float,
    ) -> dict[str, RampEstimate]:
        targets = table.ramp_targets()
        estimates: dict[str, RampEstimate] = {}
        remaining = list(tracked)
        for i, ramp in enumerate(table.ramps):
            claim = plan.claim(ramp.name) or RampClaim(ramp.name, targets[ramp.name])
            taken = [item for item in remaining if claim.takes(item[0], item[1][i])]
            estimate = tail * claim.threshold + math.fsum(s for _, _, s in taken)
            estimates[ramp.name] = RampEstimate(
                targets[ramp.name], estimate, claim.threshold, len(claim.excluded)
            )
            if len(table.ramps) > 1:
                chosen = {k for k, _, _ in taken}
                remaining = [item for item in remaining if item[0] not in chosen]
            tail *= 1.0 - claim.threshold
        return estimates
