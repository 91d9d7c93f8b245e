"""A sandbox never reaches a real cluster or cloud (issue 30): with the config `sandbox up`
writes, every traffic command and `deploy` without --publish act on the sandbox's own
redirector, and a recording gcloud, aws or kubectl first on PATH is never called."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from federation_deploy.config import load_federation
from federation_deploy.runner import Runner
from federation_deploy.sandbox.federation import Sandbox
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # sandbox config, the CLI in subprocesses

CLOUD_TOOLS = ("gcloud", "aws", "kubectl", "gke-gcloud-auth-plugin")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """What `sandbox up` starts, without moto and terraform: its config copy, the member
    stand-ins and the real redirector on 127.0.0.1."""
    from tests.conftest import copy_federation

    base = tmp_path_factory.mktemp("sandbox")
    source = copy_federation(base / "source")
    running = Sandbox(source, base / "sandbox", Runner(echo=False, stream=False),
                      progress=lambda _: None)
    try:
        running.prepare()
        running.start_members()
        running.start_redirector()
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A directory of gcloud/aws/kubectl scripts that log their argv (and fail), and the log."""
    directory = tmp_path_factory.mktemp("cloud-tools")
    log = directory / "calls.log"
    for name in CLOUD_TOOLS:
        path = directory / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit 1\n')
        path.chmod(0o755)
    return directory, log


def run_cli(sandbox: Sandbox, recorder: tuple[Path, Path], *args: str
            ) -> subprocess.CompletedProcess[str]:
    """federation-deploy with the sandbox's config dir and the recording tools first on PATH."""
    env = {**os.environ, "PATH": os.pathsep.join(
        [str(recorder[0]), str(REPO / "bin"), str(Path(sys.executable).parent),
         os.environ.get("PATH", "")])}
    for key in ("CI", "FEDERATION_DEPLOY_CONFIG_DIR", "AWS_ENDPOINT_URL", "KUBECONFIG"):
        env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "federation_deploy.cli.main", "--config-dir",
         str(sandbox.config_dir), *args],
        env=env, capture_output=True, text=True, timeout=120, check=False)


def served(sandbox: Sandbox) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(sandbox.state.redirector_url + "/active_hosts",
                                        timeout=5).json()
    return body


def test_sandbox_config_says_it_is_one(sandbox: Sandbox) -> None:
    fed = load_federation(sandbox.config_dir)
    assert fed.sandbox is not None
    assert fed.sandbox.redirector_config == sandbox.redirector_config
    assert fed.sandbox.redirector_url == sandbox.state.redirector_url
    # every member, routed or not, answers on 127.0.0.1: a verify never asks the real one
    assert all(m.url.startswith("http://127.0.0.1:") for m in fed.members.values())


def test_every_traffic_command_and_deploy_act_on_the_sandbox_redirector(
        sandbox: Sandbox, recorder: tuple[Path, Path]) -> None:
    def generation() -> int:
        return load_federation(sandbox.config_dir).generation

    steps: list[tuple[str, ...]] = [
        ("traffic", "drain", "ovh2", "--reason", "sandbox trial", "--yes"),
        ("traffic", "restore", "ovh2", "--yes"),
        ("traffic", "set", "gesis", "--weight", "30", "--yes"),
        ("ramp", "curvenote", "--to-weight", "20", "--advance", "--gate", "time", "--yes"),
        ("ramp", "curvenote", "--abort", "--yes"),
    ]
    for argv in steps:
        before = generation()
        proc = run_cli(sandbox, recorder, *argv)
        assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
        # published to the sandbox's redirector and waited for: it serves the new generation
        assert generation() > before, argv
        assert served(sandbox)["generation"] == generation(), (argv, proc.stderr)
        if argv[1] == "drain":
            assert "ovh2" not in served(sandbox)["active_hosts"]

    # deploy of the redirector's member publishes there too; another member's only verifies
    config = json.loads(sandbox.redirector_config.read_text())
    sandbox.redirector_config.unlink()
    proc = run_cli(sandbox, recorder, "deploy", "gke", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(sandbox.redirector_config.read_text()) == config
    assert "no cluster is touched" in proc.stderr
    assert "verify: gke healthy" in proc.stderr
    proc = run_cli(sandbox, recorder, "deploy", "curvenote", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "not deployed: a sandbox member has no cluster" in proc.stderr

    assert not recorder[1].exists(), recorder[1].read_text()


@pytest.mark.parametrize(("argv", "words"), [
    (("traffic", "drain", "ovh2", "--reason", "x", "--publish", "helm", "--yes"),
     "--publish helm would upgrade the redirector release on member gke's real cluster"),
    (("ramp", "curvenote", "--publish", "helm", "--yes"),
     "--publish helm would upgrade the redirector release"),
    (("diff", "gke"), "getting credentials of member 'gke' (gcp: gcloud container clusters "
                      "get-credentials)"),
    (("deploy", "ovh2", "--stage", "auth", "--yes"), None),
    (("terraform", "plan", "gke"), "terraform of member 'gke' (gcp) would run against a real"),
])
def test_cloud_steps_are_refused_in_a_sandbox(
        sandbox: Sandbox, recorder: tuple[Path, Path], argv: tuple[str, ...],
        words: str | None) -> None:
    proc = run_cli(sandbox, recorder, *argv)
    if words is None:  # nothing to refuse: the auth stage of a stand-in fetches nothing
        assert proc.returncode == 0, proc.stderr
        assert "no credentials are fetched" in proc.stderr
        assert "deploy of ovh2 done (no stage ran)" in proc.stderr  # not "(stages: )"
    else:
        assert "''s" not in proc.stderr  # not "member 'gke''s"
        assert proc.returncode == 2, proc.stderr
        assert "refused in a sandbox" in proc.stderr and words in proc.stderr
        assert f"{sandbox.config_dir / 'federation.yaml'}:" in proc.stderr
    assert not recorder[1].exists(), recorder[1].read_text()


def test_the_sandbox_judges_ramps_on_its_own_prometheus_never_the_real_one(
        tmp_path: Path) -> None:
    from tests.conftest import copy_federation

    source = copy_federation(tmp_path / "source")
    path = source / "federation.yaml"
    path.write_text(path.read_text().replace(
        "redirector:\n", "redirector:\n  prometheus_url: https://prometheus.mybinder.org\n", 1))
    running = Sandbox(source, tmp_path / "sandbox", Runner(echo=False, stream=False),
                      progress=lambda _: None)
    try:
        running.prepare()
        assert load_federation(running.config_dir).redirector.prometheus_url is None
        url = running.start_prometheus(running.start_members())
        # `ramp` in the sandbox then judges on its stand-in by default (sandbox up's hint)
        assert load_federation(running.config_dir).redirector.prometheus_url == url
        assert url.startswith("http://127.0.0.1:")
    finally:
        running.close()
