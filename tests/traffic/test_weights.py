"""The one-writer rule (traffic/weights.py): the publish rule, federation.yaml's
compare-and-swap, locks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml.comments import CommentedMap

from federation_deploy.config import load_federation
from federation_deploy.errors import ConfigError, WeightsConflict
from federation_deploy.traffic.weights import (
    ConfigChanged,
    Edit,
    check_publish,
    published_from_config,
    read_snapshot,
    restore,
    snapshot_of,
    weight_differences,
    weights_of,
    write_federation,
    writer_lock,
)
from federation_deploy.values.redirector_config import redirector_config


def set_weight(name: str, weight: float) -> Edit:
    def edit(data: CommentedMap) -> None:
        data["members"][name]["weight"] = weight
    return edit


def test_published_from_config() -> None:
    published = published_from_config({"generation": 4, "hosts": {
        "a": {"weight": 60, "prime": True}, "b": None, "c": {"weight": 1.5, "ramp": True},
        "d": "not a host"}})
    assert published is not None and published.generation == 4
    # b: null is how a generated block removes a host of a lower values layer (Helm deletes
    # it): it is not published at all; a malformed host counts as weight 0
    assert published.weights == {"a": 60.0, "c": 1.5, "d": 0.0}
    assert published.ramping == frozenset({"c"})
    unversioned = published_from_config({"generation": True, "hosts": {}})
    assert unversioned is not None and unversioned.generation is None
    assert published_from_config(None) is None and published_from_config({"x": 1}) is None


def test_the_publish_rule(config_dir: Path) -> None:
    fed = load_federation(config_dir)  # generation 0
    served = redirector_config(fed)
    check_publish(fed, None, "nowhere")  # nothing published yet
    check_publish(fed, published_from_config({**served, "generation": None}), "old")
    check_publish(fed, published_from_config(served), "same")  # idempotent re-publish
    with pytest.raises(WeightsConflict, match=r"serves generation 1, newer .*the same weights"):
        check_publish(fed, published_from_config({**served, "generation": 1}), "t")
    other = published_from_config(
        {**served, "hosts": {**served["hosts"], "gke": {**served["hosts"]["gke"], "weight": 1}}})
    with pytest.raises(WeightsConflict, match=r"already serves generation 0 with other weights "
                                              r"\(gke: 60 here, 1 published\)"):
        check_publish(fed, other, "t")
    assert weights_of(fed).weights["gke"] == 60


# curvenote at the first step of a ramp that ends at weight 30.5
CURVENOTE_RAMPING = ("    weight: 0\n    target_weight: 20 ",
                     "    weight: 1.0101\n    ramp:\n      steps: [1, 100]\n      step: 0\n"
                     "      to_weight: 30.5\n      hold: 30m\n    target_weight: 20 ")


def test_final_weights_in_the_publish_rule(config_dir: Path) -> None:
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text().replace(*CURVENOTE_RAMPING, 1))
    fed = load_federation(config_dir)
    served = redirector_config(fed)
    ours = weights_of(fed)
    assert ours.final_weights == {"curvenote": 30.5}
    assert ours.describe("curvenote") == "1.0101 (ramp to 30.5)"
    assert ours.describe("gke") == "60"
    check_publish(fed, published_from_config(served), "same")

    def served_with(**curvenote: Any) -> dict[str, Any]:
        host = {k: v for k, v in served["hosts"]["curvenote"].items() if k != "final_weight"}
        return {**served, "hosts": {**served["hosts"], "curvenote": {**host, **curvenote}}}

    # this generation published before final weights existed: not another writer's weights,
    # but not the config's either (a resume publishes it again, so the redirector gets it)
    before = published_from_config(served_with())
    assert before is not None and before.final_weights == {}
    check_publish(fed, before, "upgraded")
    assert weight_differences(ours, before) == [
        "curvenote: 1.0101 (ramp to 30.5) here, 1.0101 (ramp) published"]
    assert weight_differences(ours, before, missing_final=False) == []
    # another final weight at the same generation is another writer's (or a hand edit's)
    other = published_from_config(served_with(final_weight=20))
    with pytest.raises(WeightsConflict, match=re.escape(
            "other weights (curvenote: 1.0101 (ramp to 30.5) here, 1.0101 (ramp to 20) "
            "published)")):
        check_publish(fed, other, "t")
    # a final weight is read only for a ramping host, and only when it is a number
    odd = published_from_config({"hosts": {"a": {"weight": 1, "final_weight": 5},
                                           "b": {"weight": 1, "ramp": True,
                                                 "final_weight": "5"}}})
    assert odd is not None and odd.final_weights == {}


def test_a_changed_final_weight_is_named(config_dir: Path) -> None:
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text().replace(*CURVENOTE_RAMPING, 1))
    snapshot = read_snapshot(config_dir)
    path.write_text(path.read_text().replace("to_weight: 30.5", "to_weight: 40"))
    with pytest.raises(ConfigChanged, match="curvenote ramp final weight 30.5 -> 40"):
        snapshot_of(snapshot.fed)


def test_compare_and_swap_of_federation_yaml(config_dir: Path) -> None:
    snapshot = read_snapshot(config_dir)
    written = write_federation(snapshot, set_weight("gke", 61))
    assert written.fed.generation == 1 and written.fed.members["gke"].weight == 61
    # a second writer from the first read: refused, naming what changed, nothing written
    with pytest.raises(ConfigChanged, match=r"generation 0 read, 1 now: gke weight 60 -> 61"):
        write_federation(snapshot, set_weight("gke", 62))
    assert load_federation(config_dir).members["gke"].weight == 61
    # a write that is not a weight change keeps the generation
    again = write_federation(written, set_weight("gke", 61), bump=False)
    assert again.fed.generation == 1
    # a refused publish puts the write back, unless someone changed the file since
    assert restore(written, snapshot) is True
    assert read_snapshot(config_dir).text == snapshot.text
    assert restore(written, snapshot) is False


def test_an_invalid_result_is_put_back(config_dir: Path) -> None:
    snapshot = read_snapshot(config_dir)
    with pytest.raises(ConfigError):
        write_federation(snapshot, set_weight("gke", -1))
    assert read_snapshot(config_dir).text == snapshot.text


def test_snapshot_of_a_federation_changed_since_its_load(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    assert snapshot_of(fed).fed == fed
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text().replace("weight: 60", "weight: 70"))
    with pytest.raises(ConfigChanged, match="gke weight 60 -> 70"):
        snapshot_of(fed)


def test_bad_generation_is_a_config_error(config_dir: Path) -> None:
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text().replace("generation: 0", "generation: -3"))
    with pytest.raises(ConfigError) as info:
        load_federation(config_dir)
    assert any(p.key == "generation" and "an integer from 0 to" in str(p)
               for p in info.value.problems)


def test_one_long_writer_per_machine(config_dir: Path) -> None:
    refused = pytest.raises(WeightsConflict, match=r"another weight writer runs on this "
                            r"machine \(pid \d+: ramp curvenote, since ")
    with writer_lock(config_dir, "ramp curvenote"), refused, writer_lock(config_dir, "ramp ovh2"):
        pass
    with writer_lock(config_dir, "ramp ovh2"):  # free again once the first is done
        pass


def test_writer_lock_refusal_names_the_real_member_and_the_next_step(config_dir: Path) -> None:
    with writer_lock(config_dir, "ramp curvenote --advance", "curvenote"):
        with pytest.raises(WeightsConflict) as same, \
                writer_lock(config_dir, "ramp curvenote", "curvenote"):
            pass
        with pytest.raises(WeightsConflict) as other, writer_lock(config_dir, "ramp ovh2", "ovh2"):
            pass
    assert "the ramp of curvenote already runs on this machine (pid " in str(same.value)
    assert "`federation-deploy ramp curvenote --abort`" in str(same.value)
    # another member's ramp is someone else's work: wait for it, do not abort it
    assert "when the ramp of curvenote has ended" in str(other.value)
    assert str(other.value).endswith("run `federation-deploy ramp ovh2` again")
    assert "--abort" not in str(other.value) and "MEMBER" not in str(other.value)
