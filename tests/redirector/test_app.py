"""The application's own parts: config watching, launch draws, independent instances."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from federation_deploy.redirector import make_app, parse_config
from federation_deploy.redirector.app import ConfigWatcher, LaunchDraws, describe_change
from federation_deploy.redirector.config import RedirectorConfig, RedirectorConfigError


def data(weight: float = 1) -> dict[str, Any]:
    return {"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True},
                      "b": {"url": "https://b.org", "weight": weight}}}


class Recorder:
    def __init__(self) -> None:
        self.configs: list[RedirectorConfig] = []
        self.errors: list[RedirectorConfigError] = []


def watcher(path: Path, current: RedirectorConfig) -> tuple[ConfigWatcher, Recorder]:
    seen = Recorder()
    return ConfigWatcher(path, current=current, on_config=seen.configs.append,
                         on_invalid=seen.errors.append), seen


def test_watcher_applies_changes_and_ignores_the_initial_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data()))
    w, seen = watcher(path, parse_config(data()))
    assert w.poll() == "unchanged"
    assert w.poll() == "unchanged"
    path.write_text(json.dumps(data(weight=5)))
    assert w.poll() == "reloaded"
    assert [h.weight for c in seen.configs if (h := c.host("b"))] == [5]
    assert w.poll() == "unchanged"


def test_watcher_reports_a_bad_file_once_when_it_is_stable(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data()))
    w, seen = watcher(path, parse_config(data()))
    w.poll()
    path.write_text('{"hosts": ')  # a writer caught half-way looks like this
    assert w.poll() == "pending"
    assert not seen.errors
    assert w.poll() == "invalid"
    assert w.poll() == "unchanged"
    assert len(seen.errors) == 1 and "not valid JSON" in str(seen.errors[0])
    path.write_text(json.dumps(data(weight=2)))
    assert w.poll() == "reloaded"
    assert not seen.errors[1:]


def test_watcher_says_when_a_rejected_file_is_put_back_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    good = json.dumps(data())
    path.write_text(good)
    restored: list[bool] = []
    w = ConfigWatcher(path, current=parse_config(data()), on_config=lambda c: None,
                      on_invalid=lambda e: None, on_restored=lambda: restored.append(True))
    w.poll()
    path.write_text(json.dumps({"hosts": {"a": {"url": "https://a.org", "weight": 0}}}))
    assert [w.poll(), w.poll()] == ["pending", "invalid"]
    path.write_text(good)  # the change reverted by hand
    assert w.poll() == "restored" and restored == [True]
    assert w.poll() == "unchanged" and restored == [True]


def test_an_app_reports_reloads_ok_again_once_the_bad_change_is_reverted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.json"
    good = json.dumps(data())
    path.write_text(good)
    redirector = make_app(parse_config(data()), config_path=path).redirector
    assert redirector.watcher is not None
    path.write_text('{"hosts": ')
    redirector.watcher.poll()
    redirector.watcher.poll()
    assert redirector.metrics.last_reload_ok is False
    path.write_text(good)
    redirector.watcher.poll()
    assert redirector.metrics.last_reload_ok is True


def test_watcher_half_written_file_then_complete_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data()))
    w, seen = watcher(path, parse_config(data()))
    w.poll()
    full = json.dumps(data(weight=3))
    path.write_text(full[:10])
    assert w.poll() == "pending"
    path.write_text(full)
    assert w.poll() == "reloaded"
    assert not seen.errors


def test_watcher_missing_file_keeps_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data()))
    w, seen = watcher(path, parse_config(data()))
    w.poll()
    path.unlink()
    assert w.poll() == "pending"
    assert w.poll() == "invalid"
    assert "unreadable" in str(seen.errors[0])
    assert not seen.configs


@pytest.mark.parametrize("n", [100, 1000, 9973])
def test_launch_draws_spread_evenly(n: int) -> None:
    draws = LaunchDraws(0.123)
    values = [draws() for _ in range(n)]
    assert all(0 <= v < 1 for v in values)
    for share in (0.01, 0.1, 0.25, 0.5):
        hits = sum(v < share for v in values)
        assert abs(hits - share * n) <= 3  # low discrepancy: off by a few launches at most


def test_describe_change() -> None:
    old = parse_config(data())
    new = parse_config({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True},
                                  "c": {"url": "https://c.org", "weight": 2}}})
    assert describe_change(old, new) == "+c (weight 2), -b"
    assert describe_change(old, old) == "no effective change"


def test_describe_change_says_when_a_final_weight_changes() -> None:
    def config(new: dict[str, Any] | None) -> RedirectorConfig:
        hosts: dict[str, Any] = {"a": {"url": "https://a.org", "weight": 60, "prime": True}}
        if new is not None:
            hosts["new"] = {"url": "https://new.org", **new}
        return parse_config({"hosts": hosts})

    absent = config(None)
    step1 = config({"weight": 0.6, "ramp": True, "final_weight": 20})
    step2 = config({"weight": 3, "ramp": True, "final_weight": 20})
    retargeted = config({"weight": 3, "ramp": True, "final_weight": 30})
    done = config({"weight": 30})
    assert describe_change(absent, step1) == "+new (weight 0.6, final weight 20)"
    assert describe_change(step1, step2) == "new weight 0.6 -> 3 (ramp)"  # as before
    assert describe_change(step2, retargeted) == "new final weight 20 -> 30"
    assert describe_change(retargeted, done) == "new weight 3 -> 30, final weight 30 -> none"
    assert describe_change(config({"weight": 3, "ramp": True}), step2) == (
        "new final weight none -> 20")


def test_apps_share_no_state() -> None:
    one, two = make_app(parse_config(data())), make_app(parse_config(data(weight=9)))
    assert one.redirector is not two.redirector
    assert one.redirector.metrics is not two.redirector.metrics
    one.redirector.metrics.count_redirect("a", "cookie")
    assert not two.redirector.metrics.redirects
