"""Fixtures of the terraform tests: the real terraform, the provider mirror, one moto_server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers.moto import MotoServer, start_moto_server

MIRROR = os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins")


def pinned_version() -> str:
    for line in (REPO / "config" / "federation.yaml").read_text().splitlines():
        if line.strip().startswith("version:"):
            return line.split(":", 1)[1].split("#", 1)[0].strip().strip("\"'")
    raise AssertionError("no terraform.version in config/federation.yaml")


@pytest.fixture(scope="session")
def terraform_binary() -> str:
    """The real terraform at the pinned version, or skip saying what is missing."""
    found = shutil.which("terraform")
    if found is None:
        pytest.skip("terraform is not on PATH (these tests run the real binary)")
    proc = subprocess.run([found, "version", "-json"], capture_output=True, text=True, check=False)
    try:
        version = json.loads(proc.stdout)["terraform_version"]
    except (ValueError, KeyError):
        pytest.skip(f"cannot read the version of {found}")
    if version != pinned_version():
        pytest.skip(f"terraform {version} on PATH, the federation pins {pinned_version()}")
    return found


@pytest.fixture(scope="session")
def plugin_mirror() -> str:
    """A filesystem mirror holding hashicorp/aws (TF_PLUGIN_MIRROR, default /opt/tf-plugins)."""
    aws = Path(MIRROR) / "registry.terraform.io" / "hashicorp" / "aws"
    if not aws.is_dir():
        pytest.skip(f"no provider mirror with hashicorp/aws at {MIRROR} (set TF_PLUGIN_MIRROR "
                    "to a filesystem mirror; the registry is not used by these tests)")
    return MIRROR


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto_server of this test module's own: modules of one worker never share AWS state,
    whatever order the scheduler runs them in (a module's applied stack stays its own)."""
    try:
        server = start_moto_server(tmp_path_factory.mktemp("moto"))
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def moto(moto_server: MotoServer) -> MotoServer:
    """This module's moto_server, empty (resetting costs nothing next to a terraform destroy)."""
    moto_server.reset()
    return moto_server


@pytest.fixture(scope="module")
def tf_env(moto: MotoServer, plugin_mirror: str, terraform_binary: str) -> dict[str, str]:
    """The environment that points the stacks at moto and the providers at the mirror."""
    return {**moto.environment, "TF_PLUGIN_MIRROR": plugin_mirror}
