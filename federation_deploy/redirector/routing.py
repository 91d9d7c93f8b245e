"""Pure routing: which member a launch goes to (rendezvous, random, ramp, cookie, target URL)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from types import MappingProxyType
from urllib.parse import quote

from federation_deploy.redirector.config import HostConfig

MAX_HASH = 0xFFFFFFFFFFFFFFFF  # 2**64 - 1: the largest 8-byte digest
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Why a launch went where it went; the label values of the redirects counter.
REASON_COOKIE = "cookie"
REASON_RENDEZVOUS = "rendezvous"
REASON_RANDOM = "random"
REASON_RAMP = "ramp"
REASON_FALLBACK = "fallback"


@dataclass(frozen=True)
class Candidate:
    """A member that may receive launches right now."""

    name: str
    url: str
    weight: float
    ramp: bool = False
    final_weight: float | None = None  # a ramping member's weight once its ramp completes
    # b"-<name>": what a rendezvous key's hash input ends with, encoded once per table
    suffix: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "suffix", b"-" + self.name.encode())


@dataclass(frozen=True)
class Choice:
    name: str
    url: str
    reason: str


@dataclass(frozen=True)
class RoutingTable:
    """Who can receive launches, given the config and the current health; rebuilt on changes.

    `fallback` is true when no member is healthy and the primes take everything.
    """

    candidates: tuple[Candidate, ...]
    load_balancer: str = "rendezvous"
    fallback: bool = False
    # "per-launch" here (not the config's default, "sticky"): a table without a StickyPlan can
    # only split per launch; the app passes the config's policy and a plan.
    ramp_policy: str = "per-launch"
    # derived from candidates by of(), once per table rather than once per launch
    by_url: Mapping[str, Candidate] = field(default_factory=dict, compare=False)
    ramps: tuple[Candidate, ...] = field(default=(), compare=False)
    sticky: tuple[Candidate, ...] = field(default=(), compare=False)
    sticky_weight: float = field(default=0.0, compare=False)
    # per ramp member, the claim it has while a plan has none for it (see sticky_choose)
    unplanned: tuple[RampClaim, ...] = field(default=(), compare=False)

    @classmethod
    def of(
        cls,
        candidates: Iterable[Candidate],
        load_balancer: str,
        fallback: bool = False,
        ramp_policy: str = "per-launch",
    ) -> RoutingTable:
        cands = tuple(candidates)
        ramps = tuple(c for c in cands if c.ramp)
        sticky = tuple(c for c in cands if not c.ramp)
        total = sum(c.weight for c in cands)
        return cls(
            cands,
            load_balancer,
            fallback,
            ramp_policy,
            by_url=MappingProxyType({c.url: c for c in cands}),
            ramps=ramps,
            sticky=sticky,
            sticky_weight=sum(c.weight for c in sticky),
            unplanned=tuple(RampClaim(c.name, c.weight / total if total > 0 else 0.0)
                            for c in ramps),
        )

    @property
    def total_weight(self) -> float:
        return sum(c.weight for c in self.candidates)

    def shares(self) -> dict[str, float]:
        """Each candidate's expected share of cookie-less launches (weights renormalised)."""
        total = self.total_weight
        if total <= 0:
            return {c.name: 1 / len(self.candidates) for c in self.candidates}
        return {c.name: c.weight / total for c in self.candidates}

    @property
    def sticky_ramp(self) -> bool:
        """True when ramp members get a set of repositories (StickyPlan) rather than draws."""
        return (
            self.ramp_policy == "sticky"
            and self.load_balancer == "rendezvous"
            and bool(self.ramps)
            and bool(self.sticky)
        )

    def ramp_targets(self) -> dict[str, float]:
        """Each ramp member's target share of cookie-less launches: its weight share."""
        total = self.total_weight
        return {c.name: c.weight / total if total > 0 else 0.0 for c in self.ramps}

    def ramp_pools(self) -> dict[str, float]:
        """Each ramp member's pool: the ranks (see ramp_rank) plain rendezvous gives it at its
        final weight, f / (f + W), W the non-ramp members' weight; 1.0 (every rank) when the
        config does not say the final weight."""
        others = sum(c.weight for c in self.sticky)
        return {
            c.name: c.final_weight / (c.final_weight + others)
            if c.final_weight is not None and c.final_weight + others > 0 else 1.0
            for c in self.ramps
        }

    def rank_basis(self) -> tuple[tuple[tuple[str, float], ...], tuple[str, ...]]:
        """What ramp_rank depends on: the non-ramp members and weights, the ramp members.

        Not the ramp members' weights: a ramp step changes only those, so the ranks (and any
        cache of them) stay valid from one step to the next.
        """
        return tuple((c.name, c.weight) for c in self.sticky), tuple(c.name for c in self.ramps)


def build_table(
    hosts: Sequence[HostConfig],
    healthy: Collection[str],
    load_balancer: str,
    ramp_policy: str = "per-launch",
    last_resort: str | None = None,
) -> RoutingTable:
    """Candidates = healthy hosts with weight > 0; with none, the primes (mybinder's fallback),
    or the member named last_resort (a member acting for a prime long unhealthy: reference.py).

    Should every prime have weight 0 as well, the primes share launches equally: sending users
    to an unhealthy configured member is still better than sending them nowhere.
    """
    routable = [h for h in hosts if h.name in healthy and h.weight > 0]
    if routable:
        return RoutingTable.of((_candidate(h) for h in routable), load_balancer,
                               ramp_policy=ramp_policy)
    primes = [h for h in hosts if h.prime]
    acting = [h for h in hosts if h.name == last_resort and not h.prime]
    if acting:
        primes = acting
    weighted = [h for h in primes if h.weight > 0]
    if weighted:
        fallback = [_candidate(h) for h in weighted]
    else:
        fallback = [Candidate(h.name, h.url, 1.0, False) for h in primes]
    return RoutingTable.of(fallback, load_balancer, fallback=True, ramp_policy=ramp_policy)


def _candidate(host: HostConfig) -> Candidate:
    return Candidate(host.name, host.url, host.weight, host.ramp, host.final_weight)


def cache_key(path: str) -> str:
    """The rendezvous key of a request path, as mybinder computes it.

    Lowercased; for /build/gh... the last segment (the git ref) is dropped so that every ref
    of a repository lands on the same member. The prefix test is mybinder's, without a slash.
    """
    key = path.lower()
    if key.startswith("/build/gh"):
        key = key.rsplit("/", maxsplit=1)[0]
    return key


def _score(h: int, weight: float) -> float:
    """weight / -ln(h / (2**64 - 1)), with mybinder's exact float operations.

    The two impossible-in-practice digests keep the function total: h = 0 scores 0 and
    h = 2**64 - 1 scores infinity (mybinder's redirector would raise on both).
    """
    if h == 0:
        return 0.0
    if h == MAX_HASH:
        return math.inf
    # same expression as mybinder (multiply by the reciprocal): float rounding must agree
    return weight * (1.0 / -math.log(h / MAX_HASH))


def rendezvous_choose(key: str, candidates: Sequence[Candidate]) -> Candidate:
    """Highest score wins; a tie goes to the greater name (mybinder sorts (score, name) desc)."""
    return _rendezvous_best(key.encode(), candidates)[0]


def _rendezvous_best(encoded: bytes, candidates: Sequence[Candidate]) -> tuple[Candidate, float]:
    """Each candidate's score, inlined: this runs for every launch.

    The hash is the 8-byte big-endian blake2b digest of "<key>-<member>" as an unsigned
    integer (UTF-8 of "<key>-<member>" is the concatenation of the parts' UTF-8).
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    best, best_score, best_name = candidates[0], -1.0, ""
    log = math.log
    for candidate in candidates:
        h = int.from_bytes(blake2b(encoded + candidate.suffix, digest_size=8).digest(), "big")
        if 0 < h < MAX_HASH:
            score = candidate.weight * (1.0 / -log(h / MAX_HASH))
        else:
            score = _score(h, candidate.weight)
        if score > best_score or (score == best_score and candidate.name > best_name):
            best, best_score, best_name = candidate, score, candidate.name
    return best, best_score


# --- sticky ramp: each repository on one member, the ramp member's launch share on target -----
#
# Rendezvous gives a ramp member r with weight w the keys whose score w * s_r(k) beats the best
# score M(k) of the other members, i.e. the keys with w > w*(k) = M(k) / s_r(k). Mapped to
# q(k) = w* / (w* + W) (W: the others' total weight), r holds exactly the keys with
# q(k) < w / (w + W), its share of keys; q is uniform in [0, 1) over keys and does not depend
# on r's own weight. The sticky ramp gives r the keys with q(k) < threshold, the threshold
# chosen from estimated popularity so that they carry the target share of launches: a bigger
# share only adds keys (the choice nests), and at the final weight, plain rendezvous, the keys
# r already has stay with it.


def ramp_rank(key: str, ramp: Candidate, others: Sequence[Candidate]) -> float:
    """q(key) in [0, 1] for ramp member `ramp` against the non-ramp members `others`."""
    encoded = key.encode()
    _, best = _rendezvous_best(encoded, others)
    return _rank(encoded, ramp.suffix, best, sum(c.weight for c in others))


def _rank(encoded: bytes, suffix: bytes, best: float, others_weight: float) -> float:
    """q(key) from the best score of the others; suffix: the ramp member's b"-<name>"."""
    # 1 / -ln(h): r's score per unit of weight
    unit = _score(int.from_bytes(blake2b(encoded + suffix, digest_size=8).digest(), "big"), 1.0)
    if unit == math.inf or best <= 0.0:
        return 0.0
    if unit == 0.0 or best == math.inf or others_weight <= 0.0:
        return 1.0
    threshold = best / unit  # w*: the weight from which r would win this key
    return threshold / (threshold + others_weight)


@dataclass(frozen=True)
class RampClaim:
    """The keys one ramp member takes: rank below `threshold`, except `excluded` ones, plus
    `included` ones.

    `excluded` holds popular keys below the threshold whose launches alone would overshoot
    the target: they stay on their rendezvous member, and the tail fills the share instead.
    `included` holds popular keys above the threshold taken for their popularity (see
    plan_claim): a few popular repositories instead of many rarely launched ones.
    """

    member: str
    threshold: float
    excluded: frozenset[str] = frozenset()
    included: frozenset[str] = frozenset()

    def takes(self, key: str, rank: float) -> bool:
        if rank < self.threshold:
            return key not in self.excluded
        return key in self.included


@dataclass(frozen=True)
class StickyPlan:
    """The claims of the ramp members, in table order: a key goes to the first that takes it."""

    claims: tuple[RampClaim, ...] = ()
    # the first claim of each member, looked up once per launch
    by_member: Mapping[str, RampClaim] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        first: dict[str, RampClaim] = {}
        for claim in self.claims:
            first.setdefault(claim.member, claim)
        object.__setattr__(self, "by_member", MappingProxyType(first))

    def claim(self, member: str) -> RampClaim | None:
        return self.by_member.get(member)


def plan_claim(
    member: str,
    target: float,
    tracked: Iterable[tuple[str, float, float]],
    tail: float,
    slack: float = 0.0,
    pool: float = 1.0,
    popular: float = 0.0,
    base: float = 0.0,
) -> RampClaim:
    """The claim that gives `member` an estimated `target` share of launches.

    tracked: (key, rank, share of launches) of the keys whose popularity is known; tail: the
    share of launches of all other keys, spread evenly over ranks (their ranks are hashes, so
    a rank interval of length x holds a fraction x of them). The estimate stops within
    `slack` of the target.

    With `popular` > 0 the member takes, in this order:
      1. the base: every key of rank below `base` whose share is at most `popular` (and the
         tail there); a threshold that does not depend on the estimate, so that redirectors
         that do not talk to each other agree on it;
      2. popular keys (share above `popular`) of rank below `pool` (the ranks the member gets
         at its final weight, so completing the ramp moves none of them away), the most
         launches per rank first (rank * popular / share), skipping any that would take the
         share more than `slack` past the target, until the target is reached; then, should
         the pool not be enough, popular keys outside it in the same order;
      3. should that not be enough either, keys past the base in rank order (a threshold, at
         most `pool`).
    Popular repositories thus make up the share instead of many rarely launched ones, each
    launch of which is likely cold; and where two redirectors' estimates differ a little, the
    difference falls on a popular key or two rather than on a long run of rare ones.
    With `popular` = 0, keys are taken in rank order (plain rendezvous with exclusions).
    """
    items = list(tracked)
    if popular <= 0.0:
        return _rank_order_claim(member, target, items, tail, slack)
    base = min(base, pool)
    in_base = {k: s for k, r, s in items if r < base and s <= popular}
    admitted = tail * base + math.fsum(in_base.values())
    if admitted > target + slack:  # the base alone is too much: a lower threshold
        return _rank_order_claim(member, target, items, tail, slack)
    taken = set(in_base)
    hot = sorted((r >= pool, r * popular / s, k, s) for k, r, s in items if s > popular)
    for _outside, _order, key, share in hot:
        if admitted >= target - slack:
            break
        if admitted + share <= target + slack:
            admitted += share
            taken.add(key)
    threshold = base
    if admitted < target - slack:
        rest = sorted((r, k, s) for k, r, s in items if r >= base and s <= popular)
        more = _rank_order_claim(member, target - admitted, [(k, r - base, s) for r, k, s in rest],
                                 tail, slack)
        # never past the pool: with every known key too big for the share (a handful of
        # repositories), the tail would otherwise claim every new repository for a sliver
        threshold = min(base + more.threshold, pool)
        taken |= {k for r, k, _ in rest if r < threshold and k not in more.excluded}
    return RampClaim(
        member,
        threshold,
        excluded=frozenset(k for k, r, _ in items if r < threshold and k not in taken),
        included=frozenset(k for k, r, _ in items if r >= threshold and k in taken),
    )


def _rank_order_claim(
    member: str,
    target: float,
    items: Iterable[tuple[str, float, float]],
    tail: float,
    slack: float,
) -> RampClaim:
    """Keys in rank order; a key whose launches would take the share more than `slack` past
    the target is excluded (the keys after it, and the tail, fill the share instead)."""
    admitted = 0.0
    floor = 0.0  # the threshold must stay above every admitted key's rank
    excluded: list[tuple[str, float]] = []
    threshold: float | None = None
    for key, rank, share in sorted(items, key=lambda item: (item[1], item[0])):
        reached = admitted + tail * rank
        if reached >= target:
            threshold = (target - admitted) / tail if tail > 0 else rank
            break
        if reached + share <= target + slack:
            admitted += share
            floor = math.nextafter(rank, math.inf)
            if admitted + tail * rank >= target:
                threshold = floor
                break
        else:
            excluded.append((key, rank))
    if threshold is None:
        threshold = (target - admitted) / tail if tail > 0 else 1.0
    threshold = min(max(threshold, floor), 1.0)
    return RampClaim(member, threshold, frozenset(k for k, r in excluded if r < threshold))


def sticky_choose(table: RoutingTable, key: str, plan: StickyPlan) -> tuple[Candidate, bool]:
    """(member, taken by a ramp claim) for `key` when table.sticky_ramp.

    A ramp member without a claim in `plan` (no estimate yet) takes the keys below its share
    of weight: plain rendezvous at its current weight.
    """
    encoded = key.encode()
    best_other, best = _rendezvous_best(encoded, table.sticky)
    others_weight = table.sticky_weight
    claims = plan.by_member
    for ramp, unplanned in zip(table.ramps, table.unplanned, strict=True):
        claim = claims.get(ramp.name, unplanned)
        if claim.takes(key, _rank(encoded, ramp.suffix, best, others_weight)):
            return ramp, True
    return best_other, False


def weighted_pick(candidates: Sequence[Candidate], draw: float) -> Candidate:
    """The candidate whose slice of [0, total weight) contains draw * total (draw in [0, 1))."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    total = sum(c.weight for c in candidates)
    if total <= 0:
        return candidates[min(int(draw * len(candidates)), len(candidates) - 1)]
    threshold = draw * total
    acc = 0.0
    for candidate in candidates:
        acc += candidate.weight
        if threshold < acc:
            return candidate
    return candidates[-1]  # draw * total rounded up to total


def _ramp_pick(
    ramps: Sequence[Candidate], candidates: Sequence[Candidate], draw: float
) -> Candidate | None:
    """The ramp member this launch goes to, or None for "use rendezvous among the others".

    Each ramp member r gets probability w_r / W (W = total weight of all candidates), so its
    share of launches is exactly its weight share whatever the popularity of repositories.
    """
    if not ramps:
        return None
    if len(ramps) == len(candidates):
        return weighted_pick(ramps, draw)
    threshold = draw * sum(c.weight for c in candidates)
    acc = 0.0
    for candidate in ramps:
        acc += candidate.weight
        if threshold < acc:
            return candidate
    return None


def choose_member(
    table: RoutingTable, path: str, draw: float, plan: StickyPlan | None = None
) -> Choice:
    """Pick a member for a cookie-less launch of `path`; `draw` is uniform in [0, 1) per launch.

    With the per-launch ramp policy the draw must not come from the path: ramp members are
    chosen per launch precisely so that a popular repository cannot skew their share. With
    the sticky policy (table.sticky_ramp) `plan` decides, and the draw is not used.
    """
    candidates = table.candidates
    if table.load_balancer == "random":
        picked = weighted_pick(candidates, draw)
        reason = REASON_RANDOM
    elif table.sticky_ramp:
        picked, ramped = sticky_choose(table, cache_key(path), plan or StickyPlan())
        reason = REASON_RAMP if ramped else REASON_RENDEZVOUS
    else:
        ramp = _ramp_pick(table.ramps, candidates, draw)
        if ramp is not None:
            picked, reason = ramp, REASON_RAMP
        else:
            picked, reason = rendezvous_choose(cache_key(path), table.sticky), REASON_RENDEZVOUS
    if table.fallback:
        reason = REASON_FALLBACK
    return Choice(picked.name, picked.url, reason)


def cookie_member(table: RoutingTable, cookie: str | None) -> Candidate | None:
    """The member a `host` cookie names, if it may receive launches now; any other value: None.

    Only exact member URLs count, so a tampered cookie can never become a redirect target.
    """
    if not cookie:
        return None
    candidate = table.by_url.get(cookie)
    if candidate is None or (candidate.weight <= 0 and not table.fallback):
        return None
    return candidate


def route(
    table: RoutingTable,
    path: str,
    cookie: str | None,
    draw: Callable[[], float],
    plan: StickyPlan | None = None,
) -> Choice:
    """Cookie first (keeps a browser on its member), otherwise choose_member.

    `draw` is called only for launches without a valid cookie, so that a sequence of draws
    (one per launch) is consumed by exactly the launches it splits.
    """
    kept = cookie_member(table, cookie)
    if kept is not None:
        return Choice(kept.name, kept.url, REASON_FALLBACK if table.fallback else REASON_COOKIE)
    return choose_member(table, path, 0.0 if table.sticky_ramp else draw(), plan)


def member_target(member_url: str, uri: str) -> str | None:
    """member_url + uri when that URL stays on the member's host; None otherwise.

    member_url is a validated member URL (scheme://host[:port][/path], no query, fragment or
    user info). A request target that is not origin-form ("http://evil/...", "@evil/...",
    "//evil/...") could move the authority of the concatenation to another host; one that
    starts with a single "/" only continues the member's path.
    """
    if not uri.startswith("/") or uri.startswith("//") or _CONTROL.search(uri):
        return None
    return member_url + uri


# Characters that may stand in a Set-Cookie Path attribute as they are; anything else (";" in
# particular, which would start a new cookie attribute) is percent-encoded.
_COOKIE_PATH_SAFE = "/%!$&'()*+=:@-._~"


_ASCII_RUN = re.compile(r"[\x00-\x7f]+")


def cookie_path(path: str) -> str:
    """The request path made safe for the `host` cookie's Path attribute.

    Raw non-ASCII bytes in the request target (tornado reads them as latin-1 characters) stay
    the bytes they were, as in mybinder's cookie: a client sends that path back as it sent it,
    and only ASCII can start a cookie attribute or a header line."""
    if path.isascii():
        return quote(path, safe=_COOKIE_PATH_SAFE) or "/"
    return _ASCII_RUN.sub(lambda run: quote(run.group(), safe=_COOKIE_PATH_SAFE), path)
