"""Sticky ramp: ranks agree with rendezvous, plans hit the share and nest, popularity estimate."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from federation_deploy.redirector.config import RedirectorConfigError, parse_config
from federation_deploy.redirector.metrics import Metrics, render_metrics
from federation_deploy.redirector.routing import (
    REASON_RAMP,
    Candidate,
    RampClaim,
    RampPlan,
    RoutingTable,
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


def sticky_table(share: float, name: str = "new") -> RoutingTable:
    weight = share * 100.0 / (1 - share)
    return RoutingTable.of([*OTHERS, Candidate(name, f"https://{name}.test", weight, True)],
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


def test_without_a_plan_the_ramp_member_gets_its_rendezvous_keys() -> None:
    table = sticky_table(0.05)
    new = table.ramps[0]
    for i in range(2000):
        path = f"/build/gh/o/r{i}/HEAD"
        choice = choose_member(table, path, 0.5, RampPlan())
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
    popularity = LaunchPopularity(capacity=10, half_life=100)
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
