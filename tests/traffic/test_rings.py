"""Who is in which ring (pure), and the `rollout:` block written through the one writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation_deploy.config import RolloutState, load_federation
from federation_deploy.errors import UsageError
from federation_deploy.traffic.rings import choose_canary, plan_rings, write_rollout
from federation_deploy.traffic.weights import read_snapshot
from tests.commands.test_rollout import FEDERATION_YAML, NEW, OLD
from tests.config.test_rings import write


def test_smallest_healthy_member_is_ring_one(tmp_path: Path) -> None:
    fed = load_federation(write(tmp_path, FEDERATION_YAML))
    assert fed.rings is not None
    assert choose_canary(fed, fed.rings, "binderhub", None) == "beta"
    # beta not healthy at the redirector: the next smallest
    assert choose_canary(fed, fed.rings, "binderhub", frozenset({"alpha", "gamma"})) == "gamma"
    with pytest.raises(UsageError, match="no member can be ring 1"):
        choose_canary(fed, fed.rings, "binderhub", frozenset({"alpha"}))
    rings = plan_rings(fed, fed.rings, "binderhub", "beta")
    assert (rings.staging, rings.canary, rings.rest) == (("staging",), "beta", ("alpha", "gamma"))


def test_the_rollout_block_and_the_pin_in_one_write(tmp_path: Path) -> None:
    config_dir = write(tmp_path, FEDERATION_YAML)
    before = read_snapshot(config_dir)
    state = RolloutState(chart="binderhub", from_version=OLD, to_version=NEW, ring=1,
                         upgraded=("staging",), canary="beta", canary_weight=15.0,
                         versions_key="binderhub")
    after = write_rollout(before, state, pin=("binderhub", NEW), weights={"beta": 0.0})
    assert after.fed.generation == before.fed.generation + 1
    assert after.fed.rollout == state
    assert after.fed.members["beta"].weight == 0
    text = (config_dir / "federation.yaml").read_text()
    assert f'version: "{NEW}"   # quoted on purpose' in text  # comments and quoting kept
    assert "rollout:\n  chart: binderhub\n  from: 1.0.0\n  to: 1.1.0\n  ring: 1\n" \
           "  upgraded: [staging]\n  canary: beta\n  canary_weight: 15\n" in text
    gone = write_rollout(after, None, pin=("binderhub", OLD), weights={"beta": 15.0})
    assert gone.fed.rollout is None
    assert "rollout:" not in (config_dir / "federation.yaml").read_text()
