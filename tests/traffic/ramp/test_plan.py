"""Ramp planning (pure): steps, the weight of each step and its share."""

from __future__ import annotations

import pytest

from federation_deploy.config import Federation, load_federation
from federation_deploy.errors import UsageError
from federation_deploy.traffic.ramp.plan import (
    DEFAULT_STEPS,
    SHARE_TOLERANCE,
    check_steps,
    others_in_rotation,
    parse_steps,
    plan_ramp,
    resolve_plan,
    round_weight,
)
from federation_deploy.traffic.shares import share_to_weight, shares
from tests.helpers.standin_federation import StandinFederation


def test_parse_steps_adds_the_full_weight_last() -> None:
    assert parse_steps("1,5,10,25,50,100") == DEFAULT_STEPS
    assert parse_steps("1, 5%, 25") == (1.0, 5.0, 25.0, 100.0)


@pytest.mark.parametrize(("text", "message"), [
    ("1,5,3", "must increase"),
    ("1,1,5", "must increase"),
    ("0,5", r"in \(0, 100\]"),
    ("5,150", r"in \(0, 100\]"),
    ("1,x", "not a number"),
    ("nan", r"in \(0, 100\]"),
])
def test_parse_steps_refuses(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_steps(text)


def test_check_steps_refuses_empty() -> None:
    with pytest.raises(UsageError):
        check_steps([])


def test_round_weight_keeps_share_within_tolerance() -> None:
    for others in (1.0, 3.0, 7.0, 100.0, 123.456, 1e6):
        for share in (0.1, 1, 5, 10, 25, 33.3333, 50, 75, 99, 99.99):
            exact = share_to_weight(share, others)
            rounded = round_weight(exact, others, share)
            assert len(f"{rounded:g}".replace(".", "").lstrip("0")) <= 17
            back = 100 * rounded / (rounded + others)
            assert abs(back - share) <= SHARE_TOLERANCE, (others, share, rounded)


def test_round_weight_six_significant_digits() -> None:
    assert round_weight(share_to_weight(1, 100), 100, 1) == 1.0101
    assert round_weight(share_to_weight(5, 100), 100, 5) == 5.26316


def _fed(federation: StandinFederation) -> Federation:
    return federation.load()


def test_plan_gives_each_step_its_share(federation: StandinFederation) -> None:
    fed = _fed(federation)
    plan = plan_ramp(fed, "gamma", (1, 5, 25, 100), hold="0.5s")
    assert plan.others_total == 100  # alpha 60 + beta 40
    assert plan.percents == (1, 5, 25, 100)
    assert plan.hold_seconds == 0.5
    for step in plan.steps[:-1]:
        assert abs(step.share - step.percent) <= SHARE_TOLERANCE
        # the others keep their weights
        assert step.weights["alpha"] == 60 and step.weights["beta"] == 40
        assert step.shares == pytest.approx(shares(step.weights))
    assert [s.weight for s in plan.steps] == [1.0101, 5.26316, 33.3333, 100.0]
    final = plan.steps[-1]
    assert final.final and final.weight == 100 and final.share == 50
    assert plan.weights_at(-1) == {"alpha": 60, "beta": 40, "gamma": 0}
    assert plan.member_weight_at(-1) == 0 and plan.member_share_at(2) == pytest.approx(25, abs=1e-3)


def test_plan_drops_steps_above_the_final_share(federation: StandinFederation) -> None:
    fed = _fed(federation)
    plan = plan_ramp(fed, "gamma", DEFAULT_STEPS, to_weight=20)  # 20 / 120 = 16.67%
    assert plan.percents == (1, 5, 10, 100)
    assert plan.notes[0].startswith("steps 25% and 50% dropped: at its full weight 20")
    assert plan.steps[-1].share == pytest.approx(100 * 20 / 120)
    one = plan_ramp(fed, "gamma", (1, 5, 10, 50, 100), to_weight=20)
    assert one.notes[0].startswith("step 50% dropped: ")  # one step: singular (issue 30)


def test_plan_defaults_come_from_config(federation: StandinFederation) -> None:
    plan = plan_ramp(_fed(federation), "gamma")
    assert plan.to_weight == 100  # target_weight
    assert plan.hold == "30m" and plan.percents == (1, 5, 10, 25, 100)  # 50% = final share


def test_plan_refuses_external_unknown_and_unrouted(federation: StandinFederation) -> None:
    fed = _fed(federation)
    with pytest.raises(UsageError, match="external"):
        plan_ramp(fed, "beta")
    with pytest.raises(UsageError, match="unknown member 'nope'"):
        plan_ramp(fed, "nope")


def test_plan_refuses_missing_target_weight(federation: StandinFederation) -> None:
    path = federation.path
    path.write_text(path.read_text().replace("    target_weight: 100", "    # no target"))
    fed = load_federation(federation.config_dir)
    with pytest.raises(UsageError, match="--to-weight"):
        plan_ramp(fed, "gamma")
    assert plan_ramp(fed, "gamma", to_weight=10).to_weight == 10
    with pytest.raises(UsageError, match="> 0"):
        plan_ramp(fed, "gamma", to_weight=0)


def test_plan_refuses_without_other_members(federation: StandinFederation) -> None:
    path = federation.path
    text = path.read_text().replace("weight: 60 ", "weight: 0  ").replace("weight: 40", "weight: 0")
    path.write_text(text)
    fed = load_federation(federation.config_dir)
    assert others_in_rotation(fed, "gamma") == {}
    with pytest.raises(UsageError, match="no other member is in rotation"):
        plan_ramp(fed, "gamma")


def test_a_member_in_service_is_not_ramped(federation: StandinFederation) -> None:
    """A ramp starts from 0: its first step would cut a member in service to 1%, and an
    abort would take it out of rotation. Refused (exit 2), saying what to do instead."""
    path = federation.path
    path.write_text(path.read_text().replace("weight: 0   ", "weight: 15  "))
    fed = load_federation(federation.config_dir)
    with pytest.raises(UsageError) as refused:
        resolve_plan(fed, "gamma")
    assert refused.value.exit_code == 2
    assert str(refused.value).startswith(
        "gamma is in service at 13.04% (weight 15): a ramp starts from 0; use "
        "`federation-deploy traffic set gamma --weight W` to change its weight")
