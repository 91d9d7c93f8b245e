"""Publishing the redirector's weights: `--publish` targets, the config.json file, helm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from federation_deploy.errors import UsageError
from federation_deploy.traffic import publish as publish_module
from federation_deploy.traffic.publish import (
    PublishTarget,
    make_publisher,
    parse_publish_target,
    publish_file,
)
from federation_deploy.values.redirector_config import redirector_config
from tests.helpers.standin_federation import StandinFederation


def test_parse_publish_target() -> None:
    assert parse_publish_target("helm") == PublishTarget("helm")
    assert parse_publish_target("file:/tmp/c.json") == PublishTarget("file", Path("/tmp/c.json"))
    for bad in ("file:", "helm3", "", "s3://x"):
        with pytest.raises(UsageError):
            parse_publish_target(bad)


def test_publish_file_writes_the_redirector_config(
    federation: StandinFederation, tmp_path: Path
) -> None:
    fed = federation.load()
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "config.json"
    publish_file(fed, target)
    assert json.loads(target.read_text()) == redirector_config(fed)
    assert sorted(p.name for p in target.parent.iterdir()) == [".config.json.lock", "config.json"]
    with pytest.raises(UsageError, match="does not exist"):
        publish_file(fed, tmp_path / "missing" / "config.json")


def test_publish_helm_upgrades_the_redirector_release(
    federation: StandinFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(publish_module, "upgrade_redirector_release",
                        lambda fed, runner, **kw: calls.append((fed, runner, kw)))
    fed = federation.load()
    runner = publish_module.Runner(echo=False)
    make_publisher(PublishTarget("helm"), runner)(fed)
    assert calls == [(fed, runner, {"progress": None})]
