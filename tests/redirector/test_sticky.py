"""Sticky ramp: ranks agree with rendezvous, plans hit the share and nest, popularity estimate."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable

import pytest

from federation_deploy.redirector.config import RedirectorConfigError, parse_config
from federation_deploy.redirector.metrics import Metrics, render_metrics
from federation_deploy.redirector.routing import (
    REASON_RAMP,
    Candidate,
    RampClaim,
    RoutingTable,
    StickyPlan,
    cache_key,
    choose_member,
    plan_claim,
    ramp_rank,
    rendezvous_choose,
)
from federation_deploy.redirector.sticky import LaunchPopularity, StickyRamp, share_tolerance

from .test_routing import zipf_launches

OTHERS = [Candidate("gke", "https://gke.test", 60.0),
          Candidate("gesis", "https://gesis.test", 25.0),
          Candidate("ovh2", "https://ovh2.test", 15.0)]


def sticky_table(share: float, name: str = "new", final: float | None = None) -> RoutingTable:
    weight = share * 100.0 / (1 - share)
    return RoutingTable.of(
        [*OTHERS, Candidate(name, f"https://{name}.test", weight, True, final)],
        "rendezvous", ramp_policy="sticky")


def test_rank_below_key_share_is_exactly_where_rendezvous_picks_the_member() -> None:
    keys = [f"/build/gh/org/repo-{i}" for i in range(3000)]
    for weight in (1.0, 5.0, 33.0):
        new = Candidate("new", "https://new.test", weight)
        key_share = weight / (weight + 100.0)
        for key in keys:
            wins = rendezvous_choose(key, [*OTHERS, new]).name == "new"
            assert wins == (ramp_rank(key, new, OTHERS) < key_share), (key, weight)


def test_ranks_are_uniform_over_keys() -> None:
    new = Candidate("new", "https://new.test", 1.0)
    ranks = [ramp_rank(f"/build/gh/o/r{i}", new, OTHERS) for i in range(20000)]
    assert sum(r < 0.1 for r in ranks) / len(ranks) == pytest.approx(0.1, abs=0.01)
    assert sum(r < 0.5 for r in ranks) / len(ranks) == pytest.approx(0.5, abs=0.015)


def test_plan_with_tail_only_is_rendezvous_at_the_target_share() -> None:
    assert plan_claim("new", 0.05, [], 1.0) == RampClaim("new", 0.05)
    assert plan_claim("new", 0.05, [], 0.5) == RampClaim("new", 0.1)


def test_plan_excludes_a_key_that_would_overshoot_and_fills_with_the_tail() -> None:
    tracked = [("small", 0.01, 0.004), ("huge", 0.02, 0.3), ("mid", 0.03, 0.01)]
    claim = plan_claim("new", 0.05, tracked, tail=0.5)
    assert claim.excluded == frozenset({"huge"})
    assert claim.takes("small", 0.01) and claim.takes("mid", 0.03)
    # 0.004 + 0.01 admitted, the tail gives the rest: 0.5 * threshold = 0.036
    assert claim.threshold == pytest.approx(0.072)


def test_plan_stops_right_after_the_key_that_completes_the_share() -> None:
    claim = plan_claim("new", 0.05, [("a", 0.2, 0.03), ("b", 0.3, 0.02), ("c", 0.4, 0.02)], 0.0)
    assert claim.takes("a", 0.2) and claim.takes("b", 0.3) and not claim.takes("c", 0.4)


def test_plans_nest_as_the_share_grows() -> None:
    rng = random.Random(3)
    tracked = [(f"k{i}", rng.random(), rng.random() * 0.002) for i in range(500)]
    tail = 1.0 - sum(s for _, _, s in tracked)
    previous: set[str] = set()
    for target in (0.01, 0.05, 0.1, 0.25, 0.5):
        claim = plan_claim("new", target, tracked, tail)
        taken = {k for k, r, _ in tracked if claim.takes(k, r)}
        assert previous <= taken
        previous = taken


def test_popular_keys_of_the_pool_make_up_the_share_after_the_base() -> None:
    # base: ranks below 0.02 (rare keys and the tail there: 0.5 * 0.02 = 1%); then popular
    # keys (share > 0.001) of rank below the pool 0.3, most launches per rank first
    tracked = [
        ("rare-in-base", 0.01, 0.0005),
        ("hot-far", 0.25, 0.02),        # order 0.25 * 0.001 / 0.02 = 0.0125
        ("hot-near", 0.05, 0.01),       # 0.005: first
        ("hot-outside", 0.5, 0.05),     # outside the pool: only if the pool is not enough
        ("rare-past-base", 0.03, 0.0005),
    ]
    claim = plan_claim("new", 0.04, tracked, tail=0.5, pool=0.3, popular=0.001, base=0.02,
                       slack=0.001)
    assert claim.threshold == 0.02
    takes = {k: claim.takes(k, r) for k, r, _ in tracked}
    assert takes == {"rare-in-base": True, "hot-near": True, "hot-far": True,
                     "hot-outside": False, "rare-past-base": False}
    # 1% (tail) + 0.05% + 1% + 2% = 4.05%: within the slack (0.1 point) of the target
    assert claim.included == frozenset({"hot-near", "hot-far"})


def test_a_popular_key_that_would_overshoot_is_skipped_and_the_next_one_fills() -> None:
    tracked = [("big", 0.01, 0.05), ("mid", 0.2, 0.02), ("small", 0.1, 0.004)]
    claim = plan_claim("new", 0.03, tracked, tail=0.3, pool=0.5, popular=0.001, base=0.02,
                       slack=0.001)
    takes = {k: claim.takes(k, r) for k, r, _ in tracked}
    # base 0.3 * 0.02 = 0.6%; big (5%) comes first and overshoots: excluded (its rank is
    # below the threshold); mid (2%) then small (0.4%) make 3%
    assert takes == {"big": False, "mid": True, "small": True}
    assert claim.excluded == frozenset({"big"})


def test_when_the_pool_is_not_enough_popular_keys_outside_it_then_rare_ones_by_rank() -> None:
    tracked = [("hot-outside", 0.6, 0.01), ("rare", 0.05, 0.0001)]
    claim = plan_claim("new", 0.05, tracked, tail=0.5, pool=0.1, popular=0.001, base=0.02)
    assert claim.takes("hot-outside", 0.6)
    # 1% (base) + 1% (hot-outside), then the threshold rises over rare keys and the tail:
    # 0.0001 + 0.5 * (t - 0.02) = 0.03
    assert claim.takes("rare", 0.05)
    assert claim.threshold == pytest.approx(0.02 + (0.03 - 0.0001) / 0.5)


def test_with_every_known_key_too_big_the_threshold_stops_at_the_pool() -> None:
    tracked = [(f"k{i}", i / 10 + 0.05, 0.1) for i in range(10)]  # 10 keys of 10% each
    claim = plan_claim("new", 0.05, tracked, tail=0.0002, pool=0.3, popular=0.001, base=0.025)
    assert claim.threshold == 0.3  # not 1.0: new repositories past the pool stay put
    assert not any(claim.takes(k, r) for k, r, _ in tracked)


def test_a_base_that_is_already_too_much_falls_back_to_rank_order() -> None:
    claim = plan_claim("new", 0.01, [], tail=1.0, popular=0.001, base=0.05)
    assert claim == RampClaim("new", 0.01)


def test_the_final_weight_sets_the_pool() -> None:
    table = sticky_table(0.05, final=50.0)
    assert table.ramp_pools() == {"new": pytest.approx(50.0 / 150.0)}
    assert sticky_table(0.05).ramp_pools() == {"new": 1.0}


def test_without_a_plan_the_ramp_member_gets_its_rendezvous_keys() -> None:
    table = sticky_table(0.05)
    new = table.ramps[0]
    for i in range(2000):
        path = f"/build/gh/o/r{i}/HEAD"
        choice = choose_member(table, path, 0.5, StickyPlan())
        assert choice.name == rendezvous_choose(cache_key(path), table.candidates).name
        assert (choice.reason == REASON_RAMP) == (choice.name == new.name)


def test_popularity_counts_repeats_and_keeps_first_launches_in_the_tail() -> None:
    popularity = LaunchPopularity(capacity=10, half_life=1e9)
    for key in ["a", "a", "a", "b"]:
        popularity.observe(key)
    shares, tail = popularity.shares()
    assert shares == {"a": pytest.approx(0.5)}
    assert tail == pytest.approx(0.5)


def test_popularity_decays_with_its_half_life() -> None:
    # (a key silent that long would be taken as stopped: that test is switched off here)
    popularity = LaunchPopularity(capacity=10, half_life=100, gap_surprise=math.inf)
    for _ in range(101):
        popularity.observe("old")
    for i in range(100):
        popularity.observe(f"new{i}")
    shares, _ = popularity.shares()
    # 100 repeat launches of "old", then 100 launches later they weigh half
    assert shares["old"] == pytest.approx(0.5 * 100 / (0.5 * 101 + 100), rel=0.02)


def test_popularity_memory_is_bounded_and_survives_rescaling() -> None:
    popularity = LaunchPopularity(capacity=50, half_life=10)
    for i in range(5000):  # increments rescale every 400 launches at this half-life
        popularity.observe("hot" if i % 2 else f"cold{i}")
    assert len(popularity) <= 100 and "hot" in popularity
    shares, tail = popularity.shares()
    assert shares["hot"] == pytest.approx(0.5, abs=0.02)
    assert sum(shares.values()) + tail == pytest.approx(1.0)


def test_popularity_notices_a_surge_and_counts_it_from_the_change() -> None:
    rng = random.Random(8)
    popularity = LaunchPopularity(capacity=200, half_life=30000, fast_half_life=3000)
    keys = [f"k{i}" for i in range(100)]
    for _ in range(30000):
        popularity.observe(rng.choice(keys))
    assert popularity.changed == 0  # steady keys are never taken for changed
    for i in range(3000):  # k7 goes from 1% to 21% of launches
        popularity.observe("k7" if rng.random() < 0.2 else rng.choice(keys))
        if i % 100 == 0:
            popularity.shares()  # a change is looked for when the shares are read
    shares, _ = popularity.shares()
    assert popularity.changed >= 1
    assert shares["k7"] == pytest.approx(0.21, abs=0.02)  # the slow count alone says ~0.04
    # the other keys fell from 1% to 0.8%, too little a change for the test: their shares
    # stay the slow estimate, which follows at its own pace
    assert 0.008 <= shares["k3"] <= 0.0115


def test_a_repository_that_stops_is_noticed_from_the_gap() -> None:
    rng = random.Random(12)
    popularity = LaunchPopularity()
    keys = [f"k{i}" for i in range(200)]
    for _ in range(40000):  # "hot" has 2% of launches, 200 others share the rest
        popularity.observe("hot" if rng.random() < 0.02 else rng.choice(keys))
    assert popularity.shares()[0]["hot"] == pytest.approx(0.02, abs=0.004)
    for _ in range(600):  # it stops: 600 launches without it (1 in 180,000 at 2%)
        popularity.observe(rng.choice(keys))
    shares, _ = popularity.shares()
    assert popularity.changed == 1 and "hot" not in shares  # counted afresh: 0 launches since
    # a steady key is not taken for stopped
    assert shares["k5"] == pytest.approx(0.98 / 200, rel=0.3)


def test_trending_repository_brings_the_share_back_within_a_few_thousand_launches() -> None:
    table = sticky_table(0.05, final=50.0)
    ramp = StickyRamp()
    ramp.set_table(table)
    for path in zipf_launches(20000, 2000, 1.1, seed=9):
        ramp.observe(cache_key(path))
    held = next(f"/build/gh/org{k % 41}/repo-{k}/HEAD" for k in range(50, 2000)
                if choose_member(table, f"/build/gh/org{k % 41}/repo-{k}/HEAD", 0.0,
                                 ramp.plan).name == "new")
    rng = random.Random(10)
    launches = zipf_launches(8000, 2000, 1.1, seed=11)
    counts: Counter[str] = Counter()
    for i, path in enumerate(launches):
        if rng.random() < 0.03:  # `held` now has 3% of all launches
            path = held
        name = choose_member(table, path, 0.0, ramp.plan).name
        ramp.observe(cache_key(path))
        if i >= 4000:
            counts[name] += 1
    assert counts["new"] / 4000 == pytest.approx(0.05, abs=0.008)


@pytest.mark.slow  # hundreds of thousands of launches
@pytest.mark.parametrize("target", [0.01, 0.05, 0.25])
def test_sticky_ramp_share_on_target_after_warm_up(target: float) -> None:
    table = sticky_table(target)
    ramp = StickyRamp()
    ramp.set_table(table)
    warm, measured = zipf_launches(20000, 2000, 1.1, seed=4), zipf_launches(20000, 2000, 1.1, 5)
    for path in warm:
        choose_member(table, path, 0.0, ramp.plan)
        ramp.observe(cache_key(path))
    counts: Counter[str] = Counter()
    members: dict[str, set[str]] = {}
    for path in measured:
        name = choose_member(table, path, 0.0, ramp.plan).name
        ramp.observe(cache_key(path))
        counts[name] += 1
        members.setdefault(cache_key(path), set()).add(name)
    bound = {0.01: 0.003, 0.05: 0.005, 0.25: 0.015}[target]
    assert counts["new"] / len(measured) == pytest.approx(target, abs=bound)
    split = sum(len(m) > 1 for m in members.values())
    assert split <= 0.01 * len(members)
    estimate = ramp.estimates["new"]
    assert abs(estimate.estimate - target) <= share_tolerance(target)


def test_a_ramp_step_keeps_the_keys_and_adds_more() -> None:
    ramp = StickyRamp()
    small, large = sticky_table(0.01), sticky_table(0.05)
    ramp.set_table(small)
    for path in zipf_launches(20000, 2000, 1.1, seed=6):
        ramp.observe(cache_key(path))
    paths = {f"/build/gh/org{k % 41}/repo-{k}/HEAD" for k in range(2000)}
    before = {p for p in paths if choose_member(small, p, 0.0, ramp.plan).name == "new"}
    ramp.set_table(large)
    after = {p for p in paths if choose_member(large, p, 0.0, ramp.plan).name == "new"}
    assert len(before - after) <= 0.01 * len(before) + 1  # an excluded popular key at most
    assert len(after) > 2 * len(before)


def test_ramp_policy_setting() -> None:
    hosts = {"a": {"url": "https://a.org", "weight": 1, "prime": True}}
    assert parse_config({"hosts": hosts}).ramp_policy == "sticky"
    assert parse_config({"hosts": hosts, "ramp_policy": "per-launch"}).ramp_policy == (
        "per-launch"
    )
    with pytest.raises(RedirectorConfigError) as error:
        parse_config({"hosts": hosts, "ramp_policy": "draws"})
    assert error.value.key == "ramp_policy" and "sticky, per-launch" in str(error.value)


def test_metrics_show_target_estimate_and_threshold() -> None:
    config = parse_config({"hosts": {
        "gke": {"url": "https://gke.org", "weight": 99, "prime": True},
        "new": {"url": "https://new.org", "weight": 1, "ramp": True},
    }})
    table = RoutingTable.of(
        [Candidate("gke", "https://gke.org", 99.0), Candidate("new", "https://new.org", 1.0, True)],
        "rendezvous", ramp_policy="sticky",
    )
    ramp = StickyRamp()
    ramp.set_table(table)
    page = render_metrics(Metrics(), config, {}, table, {}, ramp)
    assert 'federation_ramp_policy{policy="sticky"} 1' in page
    assert 'federation_ramp_target_share{member="new"} 0.01' in page
    assert 'federation_ramp_estimated_share{member="new"} 0.01' in page
    assert 'federation_ramp_rank_threshold{member="new"} 0.01' in page


# --- counting apart from planning: count() on the launch path, work() between requests ------


def plans_per_launch(ramp: StickyRamp, launches: list[str], table: RoutingTable,
                     work: Callable[[int], None]) -> list[StickyPlan]:
    """The plan each launch was routed with; work(i) runs after launch i is counted."""
    ramp.set_table(table)
    seen = []
    for i, path in enumerate(launches):
        seen.append(ramp.plan)
        ramp.count(cache_key(path))
        work(i)
    return seen


def test_where_a_plan_changes_depends_on_launch_counts_not_on_when_work_runs() -> None:
    table = sticky_table(0.05, final=50.0)
    launches = zipf_launches(6000, 2000, 1.1, seed=21)
    # the planning keeps up (a slice after every launch) or never runs (each due launch
    # finishes its check itself): the same plans at the same launches
    keeping_up = StickyRamp(lag=250)
    rng = random.Random(3)
    eager = plans_per_launch(keeping_up, launches, table,
                             lambda _i: keeping_up.work(rng.choice([0.0, 0.0001, 1.0])))
    never = StickyRamp(lag=250)
    idle = plans_per_launch(never, launches, table, lambda _i: None)
    assert eager == idle
    assert keeping_up.late == 0 and never.late > 0  # only the idle one's launches planned
    changes = [i for i in range(1, len(eager)) if eager[i] != eager[i - 1]]
    assert changes and keeping_up.replans == never.replans
    # a check at launch c (a multiple of 100 while young) takes effect 250 launches later
    assert all((i - 250) % 100 == 0 for i in changes)


def test_lag_zero_is_the_synchronous_behaviour() -> None:
    table = sticky_table(0.05, final=50.0)
    launches = zipf_launches(3000, 2000, 1.1, seed=22)
    synchronous = StickyRamp()
    counted = StickyRamp(lag=0)
    plans = plans_per_launch(counted, launches, table, lambda _i: None)
    synchronous.set_table(table)
    for path, plan in zip(launches, plans, strict=True):
        assert synchronous.plan == plan
        synchronous.observe(cache_key(path))
    assert synchronous.estimates == counted.estimates and counted.late == 0


def test_counting_leaves_the_estimate_to_work() -> None:
    ramp = StickyRamp(lag=250)
    ramp.set_table(sticky_table(0.05, final=50.0))
    for i in range(50):
        ramp.count(f"/build/gh/o/r{i % 5}")
    assert ramp.counted == 50 and ramp.popularity.launches == 0 and ramp.pending
    ramp.settle()
    assert ramp.popularity.launches == 50 and not ramp.pending
