"""Sticky ramp state: decayed launch counts per repository and the StickyPlan made from them."""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass

from federation_deploy.redirector.routing import (
    Candidate,
    RampClaim,
    RoutingTable,
    StickyPlan,
    plan_claim,
    ramp_rank,
)

# Defaults, measured with benchmarks/ramp_policy.py (Zipf 1.1 over 2,000 repositories): see
# the README's "How the ramp chooses" for the figures they give.
DEFAULT_CAPACITY = 1000  # repositories counted one by one; the rest is the hash-spread tail
DEFAULT_HALF_LIFE = 30000  # launches after which a launch counts half (the steady estimate)
DEFAULT_FAST_HALF_LIFE = 3000  # the same for the estimate that notices a change
DEFAULT_SURPRISE = 4.0  # standard deviations between the two that count as a change
# A key not launched for longer than this many times the launches its share predicts between
# two of its launches has stopped (the chance of such a gap is e**-11.5, 1 in 100,000).
DEFAULT_GAP_SURPRISE = 11.5
DEFAULT_CHECK_EVERY = 500  # launches between two looks at the estimated share
# Launches between a check and its plan taking effect in the redirector (StickyRamp.lag): the
# time its planning has between requests (a check costs 2-7 ms of CPU; at 5,000 launches/s
# 250 launches are 50 ms).
DEFAULT_LAG = 250
# A repository is popular for a ramp member when its share of launches is above this fraction
# of the member's target share (plan_claim); the base, the ranks below this fraction of the
# target share, goes to the member whatever the estimate.
DEFAULT_POPULAR = 0.02
DEFAULT_BASE = 0.5
# A change is looked for only in keys with this many launches in the fast window (fewer are
# noise); once found, the key's share is counted afresh from the next launch, from the fast
# count until _SINCE_MIN launches have passed, and it becomes the steady estimate after
# _SINCE_COMMIT fast half-lives.
_SURPRISE_MIN = 10
_SINCE_MIN = 300
_SINCE_COMMIT = 2
# Rescale the counts before the per-launch increment grows past this (float headroom).
_RESCALE_AT = 2.0**40


class LaunchPopularity:
    """Exponentially decayed launch counts of the most launched keys, in bounded memory, on
    two time scales.

    A slow count (half-life `half_life` launches) gives estimates steady enough that two
    redirectors, each seeing part of the launches, make nearly the same plan; a fast count
    (half-life `fast_half_life`) notices a repository whose popularity changed: where the fast
    count differs from what the slow share predicts by more than `surprise` standard
    deviations, or where the key has not been launched for `gap_surprise` times the launches
    its share predicts between two of its launches, the key's share is counted afresh from
    the change (see shares()).

    Forward decay: launch n adds growth**n instead of multiplying every count by a decay
    factor, so a launch costs one dict update; all counts are rescaled now and then.

    A key's first launch is not counted as its own but as "novel" (Good-Turing): the launches
    of keys seen once are the best estimate of the launches of keys not seen yet, and neither
    can be pinned on a known key. That novel mass, and the launches of keys dropped to keep
    memory bounded (over 2 * capacity keys, only the `capacity` most launched are kept), make
    up the tail, which the ramp spreads over keys by hash.
    """

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        half_life: float = DEFAULT_HALF_LIFE,
        fast_half_life: float = DEFAULT_FAST_HALF_LIFE,
        surprise: float = DEFAULT_SURPRISE,
        gap_surprise: float = DEFAULT_GAP_SURPRISE,
    ):
        if (capacity < 1 or half_life <= 0 or fast_half_life <= 0 or surprise <= 0
                or gap_surprise <= 0):
            raise ValueError("capacity must be >= 1, half-lives and surprises > 0")
        self.capacity = capacity
        self.half_life = half_life
        self.fast_half_life = fast_half_life
        self.surprise = surprise
        self.gap_surprise = gap_surprise
        self._growth = (2.0 ** (1.0 / half_life), 2.0 ** (1.0 / fast_half_life))
        # per key: [slow, fast] repeat launches (decayed), the number of its last launch
        self._counts: dict[str, list[float]] = {}
        self._total = [0.0, 0.0]  # all launches (decayed)
        self._increment = [1.0, 1.0]
        self.launches = 0  # launches observed since start (not decayed)
        # keys whose popularity changed: [launches of the key, self.launches] since the change
        self._since: dict[str, list[int]] = {}

    def observe(self, key: str) -> None:
        counts = self._counts
        increment = self._increment
        total = self._total
        count = counts.get(key)
        if count is not None:
            count[0] += increment[0]
            count[1] += increment[1]
            count[2] = self.launches
            since = self._since.get(key)
            if since is not None:
                since[0] += 1
        else:
            counts[key] = [0.0, 0.0, self.launches]
            if len(counts) > 2 * self.capacity:
                self._prune()
        total[0] += increment[0]
        total[1] += increment[1]
        increment[0] *= self._growth[0]
        increment[1] *= self._growth[1]
        self.launches += 1
        if increment[1] > _RESCALE_AT or increment[0] > _RESCALE_AT:
            self._rescale()

    def _rescale(self) -> None:
        slow, fast = (1.0 / i for i in self._increment)
        for count in self._counts.values():
            count[0] *= slow
            count[1] *= fast
        self._total = [self._total[0] * slow, self._total[1] * fast]
        self._increment = [1.0, 1.0]

    def _prune(self) -> None:
        slow, fast = (1.0 / t if t > 0 else 0.0 for t in self._total)
        kept = heapq.nlargest(self.capacity, self._counts.items(),
                              key=lambda item: max(item[1][0] * slow, item[1][1] * fast))
        self._counts = dict(kept)
        self._since = {k: v for k, v in self._since.items() if k in self._counts}

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, key: str) -> bool:
        return key in self._counts

    @property
    def changed(self) -> int:
        """How many keys have a share counted since a change in their popularity."""
        return len(self._since)

    def shares(self) -> tuple[dict[str, float], float]:
        """({key: estimated share of launches}, tail share); before any launch: ({}, 1.0).

        Only keys launched more than once are listed.
        """
        slow_total, fast_total = self._total
        if slow_total <= 0:
            return {}, 1.0
        # the fast window in launches (its decayed total over the current increment)
        fast_launches = fast_total / self._increment[1]
        fast_unit = 1.0 / self._increment[1]
        surprise = self.surprise
        shares: dict[str, float] = {}
        changed = self._since
        for key, count in self._counts.items():
            slow, fast, last = count
            share = slow / slow_total
            since = changed.get(key)
            if since is not None:
                launches = self.launches - since[1]
                if launches < _SINCE_MIN:
                    share = fast / fast_total
                else:
                    share = since[0] / launches
                    if launches >= _SINCE_COMMIT * self.fast_half_life:
                        # long enough to be the steady estimate from now on
                        count[0] = share * slow_total
                        del changed[key]
            elif share * (self.launches - last) > self.gap_surprise:
                # not launched for so long that its share makes the gap improbable (below
                # e**-gap_surprise): it stopped, counted afresh from its last launch
                changed[key] = [0, int(last) + 1]
                share = 0.0 if self.launches - last > _SINCE_MIN else fast / fast_total
            else:
                expected = share * fast_launches
                seen = fast * fast_unit
                if (max(expected, seen) >= _SURPRISE_MIN
                        and abs(seen - expected) > surprise * math.sqrt(max(expected, 1.0))):
                    changed[key] = [0, self.launches]
                    share = fast / fast_total
            if share > 0:
                shares[key] = share
        return shares, max(0.0, 1.0 - math.fsum(shares.values()))


def share_tolerance(target: float) -> float:
    """How far the estimated share may drift from the target before the plan is redone.

    A dead band, so that estimation noise does not move repositories back and forth between
    members. It grows as the square root of the target, like the noise of a measured share:
    0.1 points at 1%, 0.22 at 5%, 0.5 at 25%, a third of the issue's bounds (0.3, 0.5, 1.5).
    """
    return 0.01 * math.sqrt(target)


@dataclass(frozen=True)
class RampEstimate:
    """One ramp member's figures for /metrics: target and estimated share, threshold, and
    how many repositories its claim names (excluded below the threshold, included above)."""

    target: float
    estimate: float
    threshold: float
    excluded: int
    included: int = 0


class StickyRamp:
    """Keeps a StickyPlan on target for the current routing table as launches are counted.

    Every launch is counted (also with no ramp in progress), so that a ramp that starts
    finds the estimate warm. The plan is redone when the table changes (a ramp step, a
    health change) and when, checked every `check_every` launches (more often just after a
    start, see _next_check), a ramp member's estimated share has drifted out of
    share_tolerance. `popular`, `base`: see DEFAULT_POPULAR.

    Counting and planning are apart, so that no launch waits for a plan: count() only
    appends the key to a journal; work() (the redirector runs it between requests, in slices
    of a time budget) feeds the journal to the estimate and runs the checks. A check looks at
    the estimate as it was right after its launch (launch c: the journal is fed up to c and
    waits while the check runs), and its plan takes effect from launch c + `lag` + 1: where
    the plan changes depends on launch counts only, never on wall time, so replicas that see
    the same launches make the same plans whatever their load. Should work() fall behind (the
    event loop saturated for `lag` launches), the launch that is due finishes the check
    itself. lag = 0 (the default here) is the synchronous behaviour: observe() counts and
    plans at once, as tests and the benchmarks' simulations use it.
    """

    def __init__(
        self,
        popularity: LaunchPopularity | None = None,
        check_every: int = DEFAULT_CHECK_EVERY,
        popular: float = DEFAULT_POPULAR,
        base: float = DEFAULT_BASE,
        lag: int = 0,
    ) -> None:
        if lag < 0:
            raise ValueError("lag must be >= 0")
        self.popularity = popularity if popularity is not None else LaunchPopularity()
        self.check_every = check_every
        self.popular = popular
        self.base = base
        self.lag = lag
        self.plan = StickyPlan()
        self.replans = 0
        self.late = 0  # checks a launch had to finish itself (work() behind by `lag` launches)
        self.estimates: dict[str, RampEstimate] = {}
        self.counted = self.popularity.launches  # launches counted (the journal's included)
        self._journal: list[str] = []
        self._fed = 0  # journal entries already fed to the estimate
        self._table: RoutingTable | None = None
        self._basis: object = None
        self._ranks: dict[str, tuple[float, ...]] = {}
        self._until_check = self._next_check()
        # the check of launch `_checkpoint`: its steps while running, its plan (None: keep
        # the plan) once done; it takes effect when `counted` reaches `_due`
        self._checkpoint = self.popularity.launches + self._until_check
        self._due = self._checkpoint + lag
        self._steps: Iterator[None] | None = None
        self._result: tuple[StickyPlan, dict[str, RampEstimate]] | None = None
        self._done = False

    def _next_check(self) -> int:
        """Launches until the next look: a fifth of check_every while the estimate is young
        (fewer than 10 * check_every launches since the start), when it changes fastest."""
        if self.popularity.launches < 10 * self.check_every:
            return max(1, self.check_every // 5)
        return self.check_every

    def set_table(self, table: RoutingTable) -> None:
        """Adopt a new routing table: ranks are kept if they still hold, the plan is redone.

        Not on the launch path (a health change or a config reload): the journal is fed and
        the plan redone at once, in force from the next launch.
        """
        self.settle()
        if self._done:  # a check's plan not in force yet: made for the old table, dropped
            self._result = None
        self._table = table
        if not table.sticky_ramp:
            self.plan, self.estimates = StickyPlan(), {}
            return
        basis = table.rank_basis()
        if basis != self._basis:
            self._ranks.clear()
            self._basis = basis
        self.plan, self.estimates = self._replan(table)

    def observe(self, key: str) -> None:
        """count(key), then work() until nothing is left: the synchronous behaviour."""
        self.count(key)
        self.settle()

    def count(self, key: str) -> None:
        """Count a cookie-less launch of `key` (a rendezvous key, see routing.cache_key).

        O(1): a list append; the plan changes here only at a due launch (see the class).
        """
        self._journal.append(key)
        self.counted += 1
        if self.counted >= self._due:
            self._take_effect()

    @property
    def due_in(self) -> int:
        """Launches until the pending check's plan is due (work() must be done by then)."""
        return self._due - self.counted

    @property
    def pending(self) -> bool:
        """True when work() has something to do now."""
        if self._steps is not None:
            return not self._done
        return self._fed < len(self._journal)

    def settle(self) -> None:
        """work() until nothing is left (the estimate then includes every counted launch)."""
        self.work(math.inf)

    def work(self, budget: float) -> None:
        """Feed the journal to the estimate and run due checks, for about `budget` seconds
        (at least one step); a check that is done waits for its launch to take effect."""
        deadline = time.perf_counter() + budget
        journal = self._journal
        observe = self.popularity.observe
        while True:
            if self._steps is not None:
                if self._done:
                    return  # the next check needs the estimate as of its own launch
                try:
                    next(self._steps)
                except StopIteration:
                    self._done = True
                    return
            elif self._fed < len(journal):
                # feed up to the next checkpoint, in chunks so that the budget is looked at
                stop = min(len(journal), self._fed + 256,
                           self._fed + (self._checkpoint - self.popularity.launches))
                for key in journal[self._fed:stop]:
                    observe(key)
                self._fed = stop
                if stop == len(journal):
                    journal.clear()
                    self._fed = 0
                if self.popularity.launches >= self._checkpoint:
                    self._steps = self._check_steps()
            else:
                return
            if time.perf_counter() >= deadline:
                return

    def _take_effect(self) -> None:
        """The launch the pending check's plan is due at: finish it if need be, apply it."""
        if not self._done:
            self.late += self.lag > 0
            while not self._done:
                self.work(math.inf)
                if self._steps is None and not self.pending:
                    break  # nothing fed up to the checkpoint: cannot happen, counted >= due
        if self._result is not None:
            self.plan, self.estimates = self._result
        self._result = None
        self._steps = None
        self._done = False
        self._until_check = self._next_check()
        self._checkpoint = self.popularity.launches + self._until_check
        self._due = self._checkpoint + self.lag
        if self.counted >= self._due:  # lag 0 and a checkpoint every launch
            self._take_effect()

    # planning ------------------------------------------------------------------------------

    def _check_steps(self) -> Iterator[None]:
        """The check of one checkpoint, in steps (a yield between two); sets _result."""
        table = self._table
        self._result = None
        if table is None or not table.sticky_ramp:
            return
        tracked, tail = yield from self._tracked_steps(table)
        yield
        estimates = self._estimate(table, self.plan, tracked, tail)
        if not any(abs(e.estimate - e.target) > share_tolerance(e.target)
                   for e in estimates.values()):
            self._result = (self.plan, estimates)
            return
        yield
        self._result = self._replan(table, tracked, tail)

    def _tracked_steps(
        self, table: RoutingTable
    ) -> Generator[None, None, tuple[list[tuple[str, tuple[float, ...], float]], float]]:
        shares, tail = self.popularity.shares()
        ranks = self._ranks
        if len(ranks) > len(shares):
            self._ranks = ranks = {k: r for k, r in ranks.items() if k in shares}
        tracked = []
        fresh = 0
        for key, share in shares.items():
            rank = ranks.get(key)
            if rank is None:
                rank = ranks[key] = tuple(ramp_rank(key, r, table.sticky) for r in table.ramps)
                fresh += 1
                if fresh % 64 == 0:
                    yield
            tracked.append((key, rank, share))
        return tracked, tail

    def _tracked(self, table: RoutingTable) -> tuple[list[tuple[str, tuple[float, ...], float]],
                                                     float]:
        steps = self._tracked_steps(table)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    def _replan(
        self,
        table: RoutingTable,
        tracked: list[tuple[str, tuple[float, ...], float]] | None = None,
        tail: float = 1.0,
    ) -> tuple[StickyPlan, dict[str, RampEstimate]]:
        if tracked is None:
            tracked, tail = self._tracked(table)
        targets = table.ramp_targets()
        pools = table.ramp_pools()
        claims: list[RampClaim] = []
        remaining = tracked
        for i, ramp in enumerate(table.ramps):
            target = targets[ramp.name]
            claim = plan_claim(ramp.name, target, ((k, r[i], s) for k, r, s in remaining), tail,
                               slack=share_tolerance(target) / 2, pool=pools[ramp.name],
                               popular=self.popular * target, base=self.base * target)
            claims.append(claim)
            remaining = [item for item in remaining if not claim.takes(item[0], item[1][i])]
            # the next ramp member only sees the keys this one left
            tail *= 1.0 - claim.threshold
        plan = StickyPlan(tuple(claims))
        self.replans += 1
        return plan, self._estimate(table, plan, tracked, self.popularity.shares()[1])

    @staticmethod
    def _estimate(
        table: RoutingTable,
        plan: StickyPlan,
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
                targets[ramp.name], estimate, claim.threshold, len(claim.excluded),
                len(claim.included),
            )
            if len(table.ramps) > 1:
                chosen = {k for k, _, _ in taken}
                remaining = [item for item in remaining if item[0] not in chosen]
            tail *= 1.0 - claim.threshold
        return estimates

def pool_top(popularity: LaunchPopularity, member: str, others: Sequence[Candidate],
             final_weight: float, count: int) -> list[tuple[str, float]]:
    """The `count` most launched repositories (rendezvous keys, estimated shares) of the pool
    member will serve at final_weight against `others` (the non-ramp members in rotation):
    the ones a ramp warms before its first step (`ramp MEMBER --warm N`)."""
    total = sum(c.weight for c in others)
    pool = final_weight / (final_weight + total) if final_weight + total > 0 else 1.0
    me = Candidate(member, "", final_weight)
    shares, _tail = popularity.shares()
    ranked = sorted(shares.items(), key=lambda item: (-item[1], item[0]))
    return [(key, share) for key, share in ranked
            if ramp_rank(key, me, others) < pool][:max(0, count)]
