"""`rings:` and `rollout:` in federation.yaml: names checked with file:line:key, and the
versions members get while a rollout runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation_deploy.config import load_federation
from federation_deploy.errors import ConfigError
from tests.commands.test_rollout import FEDERATION_YAML, MEMBERS, NEW, OLD


def write(tmp_path: Path, text: str) -> Path:
    config_dir = tmp_path / "config"
    (config_dir / "secrets").mkdir(parents=True)
    urls = {n: f"https://{n}.example.org" for n in MEMBERS}
    (config_dir / "federation.yaml").write_text(text.format(old=OLD, **urls))
    return config_dir


def test_rings_are_read_with_their_defaults(tmp_path: Path) -> None:
    rings = load_federation(write(tmp_path, FEDERATION_YAML)).rings
    assert rings is not None
    assert (rings.staging, rings.canary, rings.shares, rings.hold) == (
        ("staging",), "smallest", (5.0, 10.0), "1s")
    bare = FEDERATION_YAML.replace("  staging: [staging]\n", "").replace("  hold: 1s\n", "")
    rings = load_federation(write(tmp_path / "b", bare)).rings
    assert rings is not None and rings.staging == ("staging",) and rings.hold == "30m"


def test_rings_are_validated(tmp_path: Path) -> None:
    text = (FEDERATION_YAML.replace("canary: smallest ", "canary: alpha    ")
            .replace("staging: [staging]", "staging: [nobody]").replace("hold: 1s", "hold: soon"))
    with pytest.raises(ConfigError) as problems:
        load_federation(write(tmp_path, text))
    shown = str(problems.value)
    assert "federation.yaml:17: rings.staging[0]: unknown member 'nobody'" in shown
    assert "federation.yaml:18: rings.canary: alpha cannot be ring 1" in shown
    assert "federation.yaml:20: rings.hold: invalid duration 'soon'" in shown


def test_members_keep_the_old_version_until_their_ring(tmp_path: Path) -> None:
    text = FEDERATION_YAML.replace('version: "{old}"', f'version: "{NEW}"').replace(
        "members:\n", f"rollout:\n  chart: binderhub\n  from: {OLD}\n  to: {NEW}\n  ring: 1\n"
        "  upgraded: [staging]\nmembers:\n", 1)
    fed = load_federation(write(tmp_path, text))
    versions = {m.name: r.version for m, r in fed.releases_of_chart("binderhub")}
    assert versions == {"staging": NEW, "alpha": OLD, "beta": OLD, "gamma": OLD}
    assert fed.rollout is not None
    assert fed.rollout.accepted_versions == {"binderhub": [OLD, NEW]}


def test_a_rollout_goes_to_the_pinned_version(tmp_path: Path) -> None:
    text = FEDERATION_YAML.replace(
        "members:\n", f"rollout:\n  chart: binderhub\n  from: {OLD}\n  to: {NEW}\n  ring: 0\n"
        "  upgraded: [ghost]\nmembers:\n", 1)
    with pytest.raises(ConfigError) as problems:
        load_federation(write(tmp_path, text))
    shown = str(problems.value)
    assert f"rollout.to: charts.binderhub.version is {OLD}: a rollout goes to the pinned" in shown
    assert "rollout.upgraded[0]: unknown member 'ghost'" in shown
