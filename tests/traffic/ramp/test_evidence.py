"""The evidence verdict (pure): each verdict from counts, the risks it states, what it needs."""

from __future__ import annotations

import math
import random

import pytest

from federation_deploy.traffic.ramp.evidence import (
    FAILING,
    HEALTHY,
    INCONCLUSIVE,
    SLOW,
    Histogram,
    Launches,
    Risks,
    Window,
    decide_hold,
    hold_needed,
    judge,
    launches_needed,
    time_null,
)


def times(n: int, median: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [median * math.exp(rng.gauss(0, 0.5)) for _ in range(n)]


def launches(n: int, failed: int, median: float = 30.0, seed: int = 1) -> Launches:
    return Launches(float(n), float(failed), Histogram.of(times(n - failed, median, seed)))


REST = launches(2000, 40, seed=99)  # 2% failures, p50 30 s
NONE = Launches()


def test_no_launches_is_inconclusive_never_healthy() -> None:
    verdict = judge(Window(users=NONE, probes=NONE, rest=REST))
    assert verdict.verdict == INCONCLUSIVE
    # what the plan says a step needs is what the gate asks (one function for both)
    assert verdict.needed == launches_needed(REST, reference_times=REST.times.total)
    assert "inconclusive (needs about" in verdict.explain()
    # and a quiet federation too: nothing anywhere is still no evidence
    assert judge(Window(NONE, NONE, NONE)).verdict == INCONCLUSIVE


def test_a_member_as_good_as_the_rest_is_healthy() -> None:
    verdict = judge(Window(users=launches(120, 2, seed=2), probes=NONE, rest=REST))
    assert verdict.verdict == HEALTHY, verdict.explain()
    assert verdict.needed == 0
    assert "false-promotion risk <= 1%" in verdict.confidence()


def test_few_launches_are_inconclusive_and_say_how_many_more() -> None:
    verdict = judge(Window(users=launches(12, 0, seed=3), probes=NONE, rest=REST))
    assert verdict.verdict == INCONCLUSIVE
    more = judge(Window(users=launches(12 + verdict.needed + 20, 0, seed=3), probes=NONE,
                        rest=REST))
    assert more.verdict == HEALTHY, more.explain()


def test_failures_well_above_the_rest_are_failing() -> None:
    verdict = judge(Window(users=launches(30, 6, seed=4), probes=NONE, rest=REST))
    assert verdict.verdict == FAILING, verdict.explain()
    assert "20.0% vs 2.0%" in verdict.explain()
    assert "false-rollback risk" in verdict.confidence()


def test_judged_against_the_federation_not_a_constant() -> None:
    # 8% failures: failing beside a federation at 1%, not beside one at 8%
    member = launches(100, 8, seed=5)
    assert judge(Window(member, NONE, launches(3000, 30, seed=6))).verdict == FAILING
    assert judge(Window(member, NONE, launches(3000, 240, seed=6))).verdict == HEALTHY


def test_three_times_slower_is_slow() -> None:
    verdict = judge(Window(users=launches(15, 0, median=90, seed=7), probes=NONE, rest=REST))
    assert verdict.verdict == SLOW, verdict.explain()
    assert verdict.member_p50 is not None and verdict.rest_p50 is not None
    assert verdict.member_p50 > 2 * verdict.rest_p50


def test_probes_are_evidence_kept_apart_from_users() -> None:
    probes = launches(80, 1, seed=8)
    verdict = judge(Window(users=NONE, probes=probes, rest=REST))
    assert verdict.verdict == HEALTHY, verdict.explain()
    assert verdict.explain().startswith("healthy: 0 user + 80 probe launches")
    record = verdict.as_record()
    assert record["user_launches"] == 0 and record["probe_launches"] == 80
    failing = judge(Window(users=NONE, probes=launches(20, 6, seed=9), rest=REST))
    assert failing.verdict == FAILING


def test_without_reference_launch_times_only_failures_decide() -> None:
    # an idle federation (a sandbox): the others' launch times are no yardstick
    verdict = judge(Window(users=launches(200, 2, seed=10), probes=NONE,
                           rest=launches(10, 0, seed=11)))
    assert verdict.verdict == HEALTHY
    assert verdict.times.decision == "unavailable"
    assert "not compared: the others had too few launches" in verdict.explain()


def test_histogram_quantiles_and_subtraction() -> None:
    hist = Histogram.of([1.5, 3, 3, 8, 25, 100])
    assert hist.total == 6
    assert hist.quantile(0.25) == pytest.approx(2.75)  # a quarter into the (2, 5] bucket
    assert hist.quantile(0.5) == pytest.approx(5)
    assert hist.above(5) == pytest.approx(3)
    assert (hist - Histogram.of([3, 100])).total == 4
    assert Histogram().quantile(0.5) is None


def test_the_stated_risks_hold_on_simulated_steps() -> None:
    # 400 steps of a member as good as the rest and 400 of a bad one (20% failures), judged
    # after every 10 launches as a ramp does: the measured error rates stay within the risks
    rng = random.Random(2024)
    risks = Risks()
    false_rollbacks = promoted = 0
    for trial in range(800):
        bad = trial % 2 == 1
        rate = 0.2 if bad else 0.02
        n = failed = 0
        kept: list[float] = []
        for _ in range(40):
            for _ in range(10):
                n += 1
                if rng.random() < rate:
                    failed += 1
                else:
                    kept.append(30 * math.exp(rng.gauss(0, 0.5)))
            verdict = judge(Window(Launches(n, failed, Histogram.of(kept)), NONE, REST), risks)
            if verdict.decided:
                break
        false_rollbacks += not bad and verdict.verdict in (FAILING, SLOW)
        promoted += bad and verdict.verdict == HEALTHY
    assert false_rollbacks / 400 <= risks.false_rollback * 2
    assert promoted / 400 <= risks.false_promotion


def test_launches_needed_and_the_hold_they_take() -> None:
    needed = launches_needed()
    # no history: the prior 2% raised by its uncertainty (as the gate judges), not a plain 2%
    assert needed == judge(Window(NONE, NONE, NONE)).needed == 83
    # 1% of a federation launching 2/s: 72 launches an hour
    seconds = hold_needed(needed, 1.0, 2.0)
    assert seconds == pytest.approx(needed / 0.02)
    # probes every minute add 60 an hour
    probed = hold_needed(needed, 1.0, 2.0, probe_interval=60)
    assert probed is not None and seconds is not None and probed < seconds
    assert hold_needed(needed, 1.0, 0.0) is None


def test_decide_hold() -> None:
    healthy = judge(Window(launches(120, 2, seed=2), NONE, REST))
    nothing = judge(Window(NONE, NONE, REST))
    failing = judge(Window(launches(30, 6, seed=4), NONE, REST))
    assert decide_hold(healthy, 60, 600, 7200).action == "hold"
    assert decide_hold(healthy, 600, 600, 7200).action == "pass"
    assert decide_hold(nothing, 600, 600, 7200).action == "hold"
    pause = decide_hold(nothing, 7200, 600, 7200)
    assert pause.action == "pause" and "still inconclusive after 7200s" in pause.reason
    assert decide_hold(failing, 1, 600, 7200).action == "rollback"


def test_risks_are_checked() -> None:
    with pytest.raises(ValueError, match="false_rollback"):
        Risks(false_rollback=0.0)


def test_a_small_reference_does_not_roll_back_a_good_member_on_launch_time() -> None:
    # the others' p90 from ~35 launches is itself uncertain: with H0 at exactly 10% above it,
    # a member as good as the rest is rolled back as "slow" whenever the estimate came out
    # low. H0 is raised by that uncertainty (time_null), so the stated risk holds.
    risks = Risks()
    assert time_null(30, risks) == pytest.approx(0.266, abs=0.002)
    assert time_null(500, risks) == pytest.approx(0.141, abs=0.002)
    assert time_null(1e6, risks) == pytest.approx(0.1, abs=0.005)
    rng = random.Random(7)
    trials, slow = 1000, 0
    for _ in range(trials):
        rest = Launches(35, 0, Histogram.of(30 * math.exp(rng.gauss(0, 0.5)) for _ in range(35)))
        kept: list[float] = []
        for _ in range(20):
            kept += [30 * math.exp(rng.gauss(0, 0.5)) for _ in range(10)]
            verdict = judge(Window(Launches(len(kept), 0, Histogram.of(kept)), NONE, rest),
                            risks, frozenset({"failures"}))
            if verdict.decided:
                break
        slow += verdict.verdict == SLOW
    # alpha = 0.25% for the time test: 2.5 in 1000 expected at most (the bound is loose)
    assert slow <= 5, slow
    # and it says the risk it has, not a rounded one
    failing = judge(Window(launches(30, 12, seed=4), NONE, REST))
    assert failing.verdict == FAILING
    assert "false-rollback risk <= 0.25%" in failing.confidence()


def test_launches_still_needed_count_from_the_score_to_the_nearer_bound() -> None:
    # seen launches count: 40 good launches need fewer more than none did
    start = judge(Window(users=NONE, probes=NONE, rest=REST)).needed
    later = judge(Window(users=launches(40, 0, seed=5), probes=NONE, rest=REST))
    assert later.verdict == INCONCLUSIVE and later.needed < start - 30
    # 4 failures in 30 put the score nearer the rollback bound than the pass bound: about 19
    # more launches at a failing member's rate reach it (not the ~100+ a member as good as
    # the rest would take to come down to the pass bound)
    near = judge(Window(users=launches(30, 4, seed=6), probes=NONE, rest=REST))
    assert near.verdict == INCONCLUSIVE, near.explain()
    assert near.failures.llr > (near.risks.upper + near.risks.lower) / 2
    assert 10 <= near.needed <= 25, near.explain()
    # one more failure: a few launches from the rollback
    assert judge(Window(users=launches(30, 5, seed=6), probes=NONE, rest=REST)).needed <= 5


def test_an_undecided_verdict_says_which_test_already_passed() -> None:
    verdict = judge(Window(users=launches(30, 2, seed=6), probes=NONE, rest=REST))
    assert verdict.verdict == INCONCLUSIVE and verdict.times.decision == "accept"
    assert verdict.confidence() == ("undecided: the time test passed (false-promotion risk "
                                    "<= 1%); the failure test has not decided yet")
    # no yardstick for launch times: the failure test passed, the minimum launches not seen
    few = judge(Window(users=launches(8, 0, seed=7), probes=NONE, rest=NONE),
                accepted=frozenset({"failures"}))
    assert few.confidence() == ("undecided: the failure test passed (false-promotion risk "
                                "<= 1%); a step needs at least 10 launches")
