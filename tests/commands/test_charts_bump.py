"""A chart bump changes config/federation.yaml and the golden files only: no test spells a
pinned version, and the rendered values name it in one place (the release header)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands.charts import write_chart_version
from federation_deploy.config import load_federation
from tests.conftest import FIXTURE_CONFIG, REPO, copy_federation
from tests.values.test_golden import GOLDEN, MEMBERS

BUMPED = "1.0.0-0.dev.git.9999.h9999999"


def render(config: Path, member: str) -> str:
    result = CliRunner().invoke(cli, ["--config-dir", str(config), "render", member])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_bumping_binderhub_changes_only_the_golden_comparison(tmp_path: Path) -> None:
    config = copy_federation(tmp_path, with_generated=False)
    fed = load_federation(config)
    old = fed.chart("binderhub").version
    before = (config / "federation.yaml").read_text()
    write_chart_version(fed, "binderhub", BUMPED)
    after = (config / "federation.yaml").read_text()
    assert after == before.replace(f"version: {old}\n", f"version: {BUMPED}\n", 1)
    for member in MEMBERS:
        rendered = render(config, member)
        golden = (GOLDEN / f"{member}.yaml").read_text()
        # every deployable member runs binderhub: its golden file would change (UPDATE_GOLDEN=1
        # refreshes it), and only where the version is named
        assert rendered != golden, member
        assert rendered.replace(f"binderhub@{BUMPED}", f"binderhub@{old}") == golden, member


def test_no_test_spells_a_pinned_chart_version() -> None:
    fed = load_federation(FIXTURE_CONFIG)
    versions = {pin.version for pin in fed.charts.values() if pin.package_chart is None}
    assert versions, "the repository pins charts to check"
    offenders = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(REPO)}: {v}" for v in versions if v in text]
    assert offenders == [], "read it with tests.helpers.pins.pinned(CHART) instead"
