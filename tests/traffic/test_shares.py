"""Share maths: target shares of launches and the weight that gives a share."""

from __future__ import annotations

import pytest

from federation_deploy.traffic.shares import share_to_weight, shares


def test_shares_are_weight_over_total() -> None:
    assert shares({"a": 60, "b": 15, "c": 25, "d": 0}) == {"a": 60.0, "b": 15.0, "c": 25.0, "d": 0}


def test_shares_all_zero() -> None:
    assert shares({"a": 0, "b": 0}) == {"a": 0.0, "b": 0.0}


@pytest.mark.parametrize("share", [0, 1, 5, 25, 50, 99])
def test_share_to_weight_round_trips(share: float) -> None:
    others = 100.0
    w = share_to_weight(share, others)
    assert shares({"new": w, "rest": others})["new"] == pytest.approx(share)


def test_share_to_weight_rejects_100() -> None:
    with pytest.raises(ValueError):
        share_to_weight(100, 10)
