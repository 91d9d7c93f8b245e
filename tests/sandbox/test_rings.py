"""The sandbox demo's ring, without terraform: a sandbox federation of stand-ins behind a real
redirector; the sandbox's own deploy makes the stand-ins report the new version; the injected
clock holds the steps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pytest

from federation_deploy.config import load_federation
from federation_deploy.durations import Clock
from federation_deploy.runner import Runner
from federation_deploy.sandbox.member import start_standin
from federation_deploy.sandbox.rings import demo_ring, next_version
from federation_deploy.traffic.publish import make_publisher, parse_publish_target, publish_file
from tests.commands.test_rollout import FEDERATION_YAML, MEMBERS, OLD, StepClock
from tests.helpers.standin_federation import RedirectorThread, send_launches, zipf_launch_paths


def test_next_version() -> None:
    assert next_version("2.3.4") == "2.3.5"
    assert next_version("v0.9.1") == "v0.9.2"
    assert next_version("2.0.0-0.dev.git.42.habc123") == "2.0.0-0.dev.git.43.habc123"


@pytest.mark.slow  # stand-ins, a redirector and a whole rollout
def test_the_demo_ring_rolls_a_bump_through_stand_ins(tmp_path: Path) -> None:
    standins = {n: start_standin(n, versions={"binderhub": OLD}) for n in MEMBERS}
    redirector = None
    try:
        config_dir = tmp_path / "config"
        (config_dir / "secrets").mkdir(parents=True)
        published = tmp_path / "redirector" / "config.json"
        published.parent.mkdir()
        text = FEDERATION_YAML.format(old=OLD, **{n: s.url for n, s in standins.items()})
        # a sandbox's federation.yaml: no `rings:` yet (the demo adds it), its own redirector
        text = text.replace(text[text.index("rings:"):text.index("members:")], "")
        (config_dir / "federation.yaml").write_text(
            f"sandbox:\n  redirector_config: {published}\n" + text)
        publish_file(load_federation(config_dir), published)
        redirector = RedirectorThread(published).start()
        redirector.wait_active(["alpha", "beta", "gamma"])
        url_to_member = {s.url: n for n, s in standins.items()}
        paths = zipf_launch_paths(2000)

        def measure() -> tuple[Mapping[str, float], int]:
            counts: Counter[str] = send_launches(redirector.url, paths, url_to_member)
            return {n: 100.0 * c / len(paths) for n, c in counts.items()}, len(paths)

        said: list[str] = []
        clock = StepClock()
        measures = demo_ring(config_dir, publisher=make_publisher(parse_publish_target(
            f"file:{published}")), redirector_url=redirector.url, runner=Runner(echo=False),
            progress=said.append, measure=measure, clock=Clock(now=clock.now, sleep=clock.sleep),
            check_interval=0.3)
        # beta (the smallest) at 5%, then at its full weight (15%), measured
        assert [(m.member, round(m.target)) for m in measures] == [("beta", 5), ("beta", 15)]
        assert abs(measures[0].measured - 5.0) <= 2.5 and abs(measures[1].measured - 15) <= 4
        assert any("measured" in line and "ring 1: beta" in line for line in said)
        # every stand-in reports the new version; config says it once
        assert {s.state.versions["binderhub"] for s in standins.values()} == {"1.0.1"}
        fed = load_federation(config_dir)
        assert fed.rollout is None and fed.chart("binderhub").version == "1.0.1"
        assert {r.version for _, r in fed.releases_of_chart("binderhub")} == {"1.0.1"}
    finally:
        if redirector is not None:
            redirector.stop()
        for standin in standins.values():
            standin.stop()
