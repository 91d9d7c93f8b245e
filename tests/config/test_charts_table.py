"""The top-level `charts:` table: pins declared once, releases resolved against it, overrides,
and one test per kind of bad input (file:line:key)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from federation_deploy.config import load_federation
from federation_deploy.errors import ConfigError, UsageError
from tests.helpers.pins import pinned

Edit = Callable[[str, str, str], None]


def problems(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_federation(config_dir)
    return [str(p) for p in info.value.problems]


def line_of(config_dir: Path, text: str) -> int:
    lines = (config_dir / "federation.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_the_repository_pins_every_chart_once(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    text = (config_dir / "federation.yaml").read_text()
    for pin in fed.charts.values():
        # the version is spelled once, in the table
        assert text.count(f"version: {pin.version}\n") == 1, pin.name
    for member in fed.members.values():
        for release in member.releases:
            assert release.pin is not None, (member.name, release.name)
            pin = fed.chart(release.pin)
            assert (release.chart, release.repo, release.version) == (
                pin.chart, pin.repo, pin.version)
            assert not release.overrides_pin
    users = sorted(m.name for m, _ in fed.releases_of_chart("binderhub"))
    assert users == ["curvenote", "gke", "ovh2", "staging"]
    redirect = fed.member("gke").release("federation-redirect")
    assert redirect.package_chart is not None and redirect.chart == "package:federation-redirect"


def test_a_member_overrides_the_version(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "        chart: binderhub\n        namespace: staging\n",
         "        chart: binderhub\n        version: 1.0.0-0.dev.git.9999.h1234567\n"
         "        namespace: staging\n")
    fed = load_federation(config_dir)
    staging = fed.member("staging").release("binderhub")
    assert staging.version == "1.0.0-0.dev.git.9999.h1234567" and staging.overrides_pin
    assert staging.repo == fed.chart("binderhub").repo
    assert fed.member("gke").release("binderhub").version == fed.chart("binderhub").version


def test_unknown_chart_name_names_file_line_key(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "        chart: binderhub\n        namespace: ovh2\n",
         "        chart: binderhb\n        namespace: ovh2\n")
    line = line_of(config_dir, "chart: binderhb")
    (msg,) = problems(config_dir)
    assert msg.startswith(f"config/federation.yaml:{line}: members.ovh2.releases[1].chart: "
                          "unknown chart 'binderhb': not in the charts: table (charts: ") or \
        f"federation.yaml:{line}: members.ovh2.releases[1].chart: unknown chart 'binderhb'" in msg
    assert "binderhub, binderhub-container-registry-helper, cert-manager" in msg
    table_line = line_of(config_dir, "  binderhub:")
    assert f"did you mean 'binderhub' (charts.binderhub, line {table_line})? " in msg


def test_a_typo_in_a_table_key_reports_the_releases_only(config_dir: Path, edit: Edit) -> None:
    """The user's trial: `bindrehub:` in the table. Each release naming binderhub is reported,
    pointing at the table's line; nothing follows on from the releases that failed (curvenote's
    terraform outputs feed `binderhub`, which is still one of its releases)."""
    edit("federation.yaml", "charts:\n  binderhub:\n", "charts:\n  bindrehub:\n")
    table_line = line_of(config_dir, "  bindrehub:")
    found = problems(config_dir)
    assert len(found) == 4, found  # gke, staging, ovh2, curvenote
    for msg in found:
        assert ".chart: unknown chart 'binderhub': not in the charts: table" in msg, msg
        assert f"did you mean 'bindrehub' (charts.bindrehub, line {table_line})? " in msg
    assert not any("terraform.outputs" in p for p in found), found


def test_an_unused_table_entry_is_a_warning_naming_its_line(config_dir: Path,
                                                             edit: Edit) -> None:
    edit("federation.yaml", "charts:\n",
         "charts:\n  jupyterhub:\n    repo: https://example.org/charts\n"
         "    version: 1.2.3\n")
    line = line_of(config_dir, "  jupyterhub:")
    fed = load_federation(config_dir)  # valid: a warning, not an error
    (warning,) = [w for w in fed.warnings if "charts." in w]
    assert warning.endswith(f"federation.yaml:{line}: charts.jupyterhub: no release uses this "
                            "chart")
    assert "jupyterhub" in fed.charts


def test_an_unused_entry_close_to_an_inline_chart_says_so(config_dir: Path,
                                                          edit: Edit) -> None:
    # a release pinning its own chart beside the table, close to an unused entry's name
    edit("federation.yaml", "charts:\n",
         "charts:\n  extra-chrat:\n    repo: https://example.org/charts\n"
         "    version: 1.2.3\n")
    edit("federation.yaml", "        chart: ingress-nginx\n        namespace: ingress-nginx\n",
         "        chart: ingress-nginx\n        namespace: ingress-nginx\n"
         "      - name: extra\n        chart: extra-chart\n"
         "        repo: https://example.org/charts\n        version: 1.2.3\n"
         "        namespace: extra\n")
    (warning,) = [w for w in load_federation(config_dir).warnings if "charts." in w]
    assert warning.endswith("charts.extra-chrat: no release uses this chart (did you mean "
                            "'extra-chart', which releases name?)")


def test_a_release_of_the_table_takes_no_repo(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "        chart: binderhub\n        namespace: ovh2\n",
         "        chart: binderhub\n        repo: https://example.org/charts\n"
         "        namespace: ovh2\n")
    (msg,) = problems(config_dir)
    assert "members.ovh2.releases[1].repo: chart 'binderhub' comes from charts.binderhub" in msg


def test_an_override_must_be_exact(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "        chart: binderhub\n        namespace: ovh2\n",
         "        chart: binderhub\n        version: '>=1.0'\n        namespace: ovh2\n")
    (msg,) = problems(config_dir)
    assert "members.ovh2.releases[1].version: chart versions must be pinned exactly" in msg


def test_a_shipped_chart_cannot_be_overridden(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "        chart: federation-redirect\n",
         "        chart: federation-redirect\n        version: 0.2.0\n")
    (msg,) = problems(config_dir)
    assert "members.gke.releases[3].version: package:federation-redirect ships one version" in msg


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("    repo: https://charts.jetstack.io\n", "",
     "charts.cert-manager.repo: required key is missing"),
    ("    repo: https://charts.jetstack.io\n", "    repo: http://charts.jetstack.io\n",
     "charts.cert-manager.repo: expected an https URL"),
    ("    repo: https://charts.jetstack.io\n",
     "    repo: https://charts.jetstack.io\n    repository: x\n",
     "charts.cert-manager.repository: unknown key"),
    ("    version: {helper}\n", "    version: 0.2\n",
     "charts.binderhub-container-registry-helper.version: expected an exact version as a "
     "quoted string"),
    ("    version: 0.1.0\n", "    version: 0.0.9\n",
     "charts.federation-redirect.version: package:federation-redirect ships version 0.1.0"),
    ("    chart: package:federation-redirect", "    chart: package:nope",
     "charts.federation-redirect.chart: no chart 'package:nope' ships with this package"),
    ("    changelog: https://github.com/cert-manager/cert-manager/releases\n",
     "    changelog: not a url\n", "charts.cert-manager.changelog: expected an http(s) URL"),
])
def test_bad_table_entries(config_dir: Path, edit: Edit, old: str, new: str,
                           expected: str) -> None:
    # {helper}: the registry helper's pin, whatever it is today
    edit("federation.yaml", old.replace("{helper}", pinned("binderhub-container-registry-helper")),
         new)
    found = problems(config_dir)
    assert any(expected in p for p in found), found
    # an invalid entry is reported once: the releases naming it say nothing more
    assert not any("unknown chart" in p for p in found), found


def test_inline_pins_still_work_beside_the_table(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "        chart: ingress-nginx\n        namespace: ingress-nginx\n",
         "        chart: ingress-nginx\n        namespace: ingress-nginx\n"
         "      - name: extra\n        chart: extra-chart\n"
         "        repo: https://example.org/charts\n        version: 1.2.3\n"
         "        namespace: extra\n")
    fed = load_federation(config_dir)
    extra = fed.member("gke").release("extra")
    assert (extra.chart, extra.repo, extra.version, extra.pin) == (
        "extra-chart", "https://example.org/charts", "1.2.3", None)


def test_an_inline_pin_needs_its_version(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "        chart: ingress-nginx\n        namespace: ingress-nginx\n",
         "        chart: ingress-nginx\n        namespace: ingress-nginx\n"
         "      - name: extra\n        chart: extra-chart\n"
         "        repo: https://example.org/charts\n        namespace: extra\n")
    assert any("members.gke.releases[2].version: required key is missing" in p
               for p in problems(config_dir))


def test_unknown_chart_is_a_usage_error(config_dir: Path) -> None:
    with pytest.raises(UsageError, match="unknown chart 'nope' \\(charts: binderhub, "):
        load_federation(config_dir).chart("nope")
    with pytest.raises(UsageError, match="; did you mean 'cert-manager'\\?$"):
        load_federation(config_dir).chart("certmanager")
