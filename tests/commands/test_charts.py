"""`charts outdated` and `charts bump` against a real helm repository served on 127.0.0.1:
charts made with `helm create`/`helm package`, indexed with `helm repo index`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.actions.chart_repo import ChartRepositoryError, oci_chart_version
from federation_deploy.cli.main import cli
from federation_deploy.config import load_federation
from tests.helpers.recording import RecordingRunner
from tests.helpers.serve import serving

VERSIONS = ("1.0.0", "1.1.0", "1.2.0-0.dev.git.7.habcdef0")
UNREACHABLE = "http://127.0.0.1:9/charts"  # connection refused at once

FEDERATION_YAML = """\
# A federation for the chart tests; comments and quoting must survive a bump.

charts:
  demo:                          # the chart as the repository names it
    repo: {repo}
    version: "1.0.0"             # quoted on purpose
    changelog: https://example.org/demo/CHANGES.md
  demo-dev:
    chart: demo
    repo: {repo}
    version: 1.0.0-0.dev.git.3.h0000000   # a dev pin: offered dev versions
  gone:
    chart: demo
    repo: {unreachable}
    version: 1.0.0
  federation-redirect:
    chart: package:federation-redirect
    version: 0.1.0

redirector:
  host: redirector.test
  member: alpha
  release: federation-redirect

members:
  alpha:
    url: https://alpha.test
    cloud: kubeconfig
    prime: true
    weight: 1
    cluster:
      kubeconfig: alpha.yml
    releases:
      - name: demo
        chart: demo
        namespace: demo
      - name: federation-redirect
        chart: federation-redirect
        namespace: federation-redirect
  # staging first: it pins its own version of demo
  staging:
    url: https://staging.test
    cloud: kubeconfig
    routed: false
    cluster:
      kubeconfig: staging.yml
    releases:
      - name: demo
        chart: demo
        version: 1.1.0
        namespace: demo
"""


@pytest.fixture(scope="module")
def helm_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A helm repository on 127.0.0.1: chart demo in VERSIONS, index by `helm repo index`."""
    from tests.helpers.recording import locate_helm

    helm, reason = locate_helm()
    if helm is None:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("helm-repo")
    served = work / "served"
    served.mkdir()
    subprocess.run([helm, "create", "demo"], cwd=work, check=True, capture_output=True)
    chart_yaml = work / "demo" / "Chart.yaml"
    original = chart_yaml.read_text()
    for version in VERSIONS:
        chart_yaml.write_text(original.replace("\nversion: 0.1.0\n", f"\nversion: {version}\n")
                              + "sources:\n  - https://example.org/demo\n")
        subprocess.run([helm, "package", str(work / "demo"), "--destination", str(served)],
                       check=True, capture_output=True)
    with serving(served) as base:
        url = f"{base}/charts"
        subprocess.run([helm, "repo", "index", str(served), "--url", url], check=True,
                       capture_output=True)
        # served at /charts/: index.yaml and the packages, as a real repository lays them out
        charts_dir = served / "charts"
        charts_dir.mkdir()
        for path in list(served.iterdir()):
            if path != charts_dir:
                path.rename(charts_dir / path.name)
        yield url




@pytest.fixture
def config(tmp_path: Path, helm_repo: str) -> Path:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "federation.yaml").write_text(
        FEDERATION_YAML.format(repo=helm_repo, unreachable=UNREACHABLE))
    return config_dir


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config), "charts", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_repository_is_real(helm_repo: str) -> None:
    import requests

    index = requests.get(f"{helm_repo}/index.yaml", timeout=10).text
    assert "apiVersion: v1" in index and "demo-1.1.0.tgz" in index


def test_outdated_lists_every_chart_and_reports_the_unreachable_one(config: Path) -> None:
    code, out, err = run(config, "outdated", "-o", "json")
    assert code == 1, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert list(rows) == ["demo", "demo-dev", "gone", "federation-redirect"]
    # a stable pin is offered stable versions only; a dev pin the newest dev version
    assert (rows["demo"]["newest"], rows["demo"]["outdated"]) == ("1.1.0", True)
    assert rows["demo"]["changelog"] == "https://example.org/demo/CHANGES.md"
    assert rows["demo"]["overrides"] == {"staging": "1.1.0"}
    assert (rows["demo-dev"]["newest"], rows["demo-dev"]["outdated"]) == (VERSIONS[2], True)
    assert rows["demo-dev"]["changelog"] == "https://example.org/demo"  # from the index
    gone = rows["gone"]
    assert gone["newest"] is None and gone["outdated"] is None  # not asked: not known
    assert gone["error"].startswith(f"cannot reach {UNREACHABLE}/index.yaml: ")
    assert "refused" in gone["error"].lower()
    assert rows["federation-redirect"]["source"] == "shipped with federation-deploy"
    assert rows["federation-redirect"]["outdated"] is False
    assert "1 chart(s) could not be checked: gone\n" in err
    assert "2 outdated: demo, demo-dev" in err


def test_outdated_table_and_exit_0_when_every_repository_answers(config: Path) -> None:
    path = config / "federation.yaml"
    text = path.read_text()
    start, end = text.index("  gone:\n"), text.index("  federation-redirect:\n")
    path.write_text(text[:start] + text[end:])
    code, out, err = run(config, "outdated")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["chart", "pinned", "newest", "state", "overrides", "error"]
    assert lines[1].split() == ["demo", "1.0.0", "1.1.0", "outdated", "staging=1.1.0", "-"]
    assert lines[2].split() == ["demo-dev", "1.0.0-0.dev.git.3.h0000000", VERSIONS[2],
                                "outdated", "-", "-"]
    assert lines[3].split() == ["federation-redirect", "0.1.0", "0.1.0", "up", "to", "date", "-",
                                "-"]


def test_outdated_table_shows_the_error_last_and_short(config: Path) -> None:
    code, out, err = run(config, "outdated")
    assert code == 1, err
    (gone,) = [line for line in out.splitlines() if line.startswith("gone ")]
    # the table's cell is the first part only; -o json has the connection's whole story
    assert gone.split() == ["gone", "1.0.0", "-", "error", "-",
                            "cannot", "reach", f"{UNREACHABLE}/index.yaml"]
    assert "1 chart(s) could not be checked: gone (the whole errors: -o json)" in err


def test_bump_to_the_newest_keeps_comments_and_changes_one_line(config: Path) -> None:
    path = config / "federation.yaml"
    before = path.read_text()
    code, out, err = run(config, "bump", "demo")
    assert code == 0, err
    after = path.read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True)
               if a != b]
    # the one line of the pin, its quoting and comment kept
    assert changed == [('    version: "1.0.0"             # quoted on purpose',
                        '    version: "1.1.0"             # quoted on purpose')]
    assert "charts.demo.version: 1.0.0 -> 1.1.0 (" in err and "federation.yaml:6)" in err
    assert "staging pins its own version 1.1.0 on release 'demo'" in err
    fed = load_federation(config)
    assert fed.member("alpha").release("demo").version == "1.1.0"
    # a second bump finds nothing newer and writes nothing
    code, _, err = run(config, "bump", "demo")
    assert code == 0 and "charts.demo.version is already 1.1.0" in err
    assert path.read_text() == after


def test_bump_a_dev_pin_and_to_a_given_version(config: Path) -> None:
    code, _, err = run(config, "bump", "demo-dev")
    assert code == 0, err
    assert load_federation(config).chart("demo-dev").version == VERSIONS[2]
    code, _, err = run(config, "bump", "demo-dev", "1.0.0")
    assert code == 0, err
    assert "(a downgrade)" in err
    (line,) = [t for t in (config / "federation.yaml").read_text().splitlines()
               if t.endswith("# a dev pin: offered dev versions")]
    assert line.split() == ["version:", "1.0.0", "#", "a", "dev", "pin:", "offered", "dev",
                            "versions"]


@pytest.mark.parametrize(("args", "code", "message"), [
    (("demo", "1.0.5"), 2, "has no version '1.0.5' of chart 'demo'"),
    (("demo", "^1.0"), 2, "'^1.0' is not an exact chart version"),
    (("nope",), 2, "unknown chart 'nope' (charts: demo, demo-dev, gone, federation-redirect)"),
    (("federation-redirect",), 2, "ships with federation-deploy"),
    (("gone",), 1, f"cannot reach {UNREACHABLE}/index.yaml"),
    (("gone",), 1, "nothing was changed (charts.gone.version is still 1.0.0); "
                   "`federation-deploy charts bump gone VERSION --no-check` writes a version "
                   "without asking the repository"),
    (("gone", "1.1.0"), 1, "nothing was changed"),
    (("demo", "1.0.5"), 2, "has no version '1.0.5' of chart 'demo'; nothing was changed"),
    (("gone", "--no-check"), 2, "--no-check needs a VERSION"),
    (("nope", "1.0.0", "--no-check"), 2, "unknown chart 'nope'"),
])
def test_bump_refuses(config: Path, args: tuple[str, ...], code: int, message: str) -> None:
    before = (config / "federation.yaml").read_text()
    got, _, err = run(config, "bump", *args)
    assert got == code, err
    assert message in err and "Traceback" not in err
    assert (config / "federation.yaml").read_text() == before


def test_bump_no_check_writes_without_asking_and_says_so(config: Path) -> None:
    code, _, err = run(config, "bump", "gone", "1.1.0", "--no-check")
    assert code == 0, err
    assert "charts.gone.version: 1.0.0 -> 1.1.0 (" in err
    assert "not checked: the repository was not asked whether it has demo 1.1.0 (--no-check)" \
        in err
    assert load_federation(config).chart("gone").version == "1.1.0"


def test_oci_charts_are_asked_through_helm() -> None:
    recorder = RecordingRunner()
    recorder.answer(["helm", "show", "chart"], 0, "apiVersion: v2\nname: demo\nversion: 2.1.0\n")
    assert oci_chart_version(recorder, "helm", "oci://127.0.0.1:5000/charts/demo",
                             devel=True) == "2.1.0"
    assert oci_chart_version(recorder, "helm", "oci://127.0.0.1:5000/charts/demo",
                             version="2.0.0") == "2.1.0"
    assert recorder.words() == [
        ["helm", "show", "chart", "oci://127.0.0.1:5000/charts/demo", "--devel"],
        ["helm", "show", "chart", "oci://127.0.0.1:5000/charts/demo", "--version", "2.0.0"],
    ]
    failing = RecordingRunner()
    failing.answer(["helm", "show", "chart"], 1, "", "Error: failed to do request: connection "
                   "refused\n")
    with pytest.raises(ChartRepositoryError, match="helm show chart oci://x/demo failed: "
                                                   "Error: failed to do request"):
        oci_chart_version(failing, "helm", "oci://x/demo")
