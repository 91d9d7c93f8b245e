"""Shared fixtures: copies of the config and terraform trees, helm, a recording Runner."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.recording import RecordingRunner, locate_helm

REPO = Path(__file__).resolve().parent.parent
# The tests' own federation (a frozen copy of config/): tests never read config/federation.yaml,
# so a maintainer adds a member there without touching a test (tests/fixtures/federation/).
FIXTURE_CONFIG = REPO / "tests" / "fixtures" / "federation" / "config"

# Fixtures that tests in several folders share: a stand-in federation with its redirector, and
# terraform with moto_server (each fixture starts nothing until a test asks for it).
pytest_plugins = ["tests.helpers.standin_federation", "tests.helpers.terraform_fixtures"]


def copy_federation(dest: Path, *, with_generated: bool = True) -> Path:
    """Copy the fixture federation's config/ and the repository's terraform/ (without local
    state or secrets) to dest; return the config dir."""
    ignore = shutil.ignore_patterns(".terraform", "*.tfplan", ".fd-work", "*.tfstate*")
    shutil.copytree(REPO / "terraform", dest / "terraform", ignore=ignore)
    config = dest / "config"
    shutil.copytree(FIXTURE_CONFIG, config, ignore=ignore)
    secrets = config / "secrets" / "values"
    for path in secrets.glob("*.yaml"):
        if not path.name.endswith(".example.yaml"):
            path.unlink()  # a developer's real secrets never leak into tests
    if not with_generated:
        shutil.rmtree(config / "generated", ignore_errors=True)
    return config


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A private, writable copy of the repository's federation config."""
    return copy_federation(tmp_path)


@pytest.fixture
def edit(config_dir: Path) -> Callable[[str, str, str], None]:
    """Replace text in a config file, failing loudly when the text is not there."""

    def _edit(relative: str, old: str, new: str) -> None:
        path = config_dir / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    return _edit


# --------------------------------------------------------------------------------------------
# helm and the recording Runner (tests/helpers/recording.py), for the deploy side's tests


@pytest.fixture(scope="session")
def helm_binary() -> str:
    found, reason = locate_helm()
    if found is None:
        pytest.skip(reason)
    return found


@pytest.fixture
def recorder() -> RecordingRunner:
    return RecordingRunner()


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every temporary file of the code under test goes here, so tests can see it is gone."""
    import tempfile

    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only stand-ins for helm, kubectl, gcloud, aws and the GKE auth plugin
    (never run: the recorder answers), so binary discovery works on any machine."""
    directory = tmp_path / "fakebin"
    directory.mkdir()
    for name in ("helm", "kubectl", "gcloud", "aws", "gke-gcloud-auth-plugin"):
        path = directory / name
        path.write_text("#!/bin/sh\nexit 97\n")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", str(directory))
    monkeypatch.delenv("FEDERATION_DEPLOY_HELM", raising=False)
    return directory


# --------------------------------------------------------------------------------------------
# Three workers (pytest-xdist, `make test`): the tests of one module that use moto_server share
# one applied stack and one moto_server (both module-scoped), so each such module runs whole on
# one worker (--dist loadgroup, a group per module); different modules go to different
# workers or one after the other, never sharing AWS state. The rest is spread over all three:
# most of the time is waiting on real processes (terraform, helm, servers), so three workers
# keep 2 cores busier than two would.
#
# The slow tier (`-m slow`; `make check` runs the rest): every test that needs one of these
# fixtures runs a real tool or real servers: terraform against moto_server, helm, the redirector
# with its stand-in members. Tests that are slow for another reason (the CLI in a subprocess,
# real waits, large inputs) carry @pytest.mark.slow themselves.
SLOW_FIXTURES = frozenset({
    "moto_server",  # tests/helpers/terraform_fixtures.py: moto_server and terraform
    "terraform_binary",
    "helm_binary",  # the real helm (and helm_repo, built with it)
    "federation",  # tests/helpers/standin_federation.py, tests/redirector/conftest.py
    "standins",
    "redirector_server",
    "redirector_process",
    "rollout_rig",  # tests/commands/test_rollout.py: stand-ins, a redirector, rollouts
    "external_rig",  # the same with a member this tool does not deploy
    "adopted",  # tests/adopt: a deploy repository adopted (and, in test_adopted_ci_matrix, git)
})


# tryfirst: xdist's worker turns the xdist_group mark into the test's group in its own
# pytest_collection_modifyitems, registered after this conftest and so called before it
# unless this one goes first; a mark added after that is ignored, and every terraform module
# would then be split over both workers, each applying the module's stack again.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "moto_server" in fixtures:
            item.add_marker(pytest.mark.xdist_group(f"terraform:{item.nodeid.split('::')[0]}"))
        if fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _no_real_announcements(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test announces to a Grafana or a webhook of the machine's environment (issue 26):
    the tests that announce point these at stand-ins on 127.0.0.1 themselves."""
    for name in ("GRAFANA_URL", "GRAFANA_API_KEY", "FEDERATION_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
