"""The redirector watch (traffic/ramp/watch.py): when a served generation counts as done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from federation_deploy.config import load_federation
from federation_deploy.traffic.ramp.watch import RampIO, RampSettings, RedirectorWatch


class Newer(Exception):
    pass


def watch(hosts: dict[str, Any], live: int) -> RedirectorWatch:
    def on_newer() -> None:
        raise Newer()

    io = RampIO(publish=lambda fed: None, active_hosts=lambda url, timeout: hosts,
                live_generation=lambda url, timeout: live)
    return RedirectorWatch("ovh2", RampSettings(redirector_url="http://127.0.0.1:9"), io,
                           on_newer)


# generation 0 in the repository's config: ovh2 was drained there (weight 0, absent from
# /active_hosts); the redirector already serves generation 1, in which someone else also
# drained gesis (two drains at once)
SERVED = {"gke": {"weight": 60}, "curvenote": {"weight": 0}}


def test_a_one_off_change_kept_in_a_newer_generation_is_done(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    expected = {"gke": 60.0, "ovh2": 0.0, "gesis": 25.0, "curvenote": 0.0}
    answer, absent = watch(SERVED, fed.generation + 1).agreement(
        fed, expected, ramp_flag=False, one_off=True)
    assert answer is None and not absent


def test_a_one_off_change_not_yet_served_is_not_done(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    served = {**SERVED, "ovh2": {"weight": 15}}  # the older generation, ovh2 still in
    answer, _ = watch(served, fed.generation).agreement(
        fed, {"ovh2": 0.0}, ramp_flag=False, one_off=True)
    assert answer == "ovh2 is still in /active_hosts (weight 15)"


def test_a_ramp_step_stops_at_a_newer_generation(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    with pytest.raises(Newer):
        watch(SERVED, fed.generation + 1).agreement(fed, {"gke": 60.0, "ovh2": 0.0},
                                                    ramp_flag=False)
