"""Ask chart repositories what they publish: a helm repository's index.yaml over HTTP, an OCI
registry's newest chart through `helm show chart` (the Runner)."""

from __future__ import annotations

from typing import Any

import requests
import yaml

from federation_deploy.config.chart_versions import IndexEntry, index_entries
from federation_deploy.errors import FederationDeployError, ToolError
from federation_deploy.health import http
from federation_deploy.runner import Runner

# index.yaml of a busy repository (jupyterhub's) is tens of MB: generous, but bounded
INDEX_TIMEOUT = 60.0


class ChartRepositoryError(FederationDeployError):
    """A repository could not be asked, or did not answer as a helm repository does."""


def index_url(repo: str) -> str:
    return repo.rstrip("/") + "/index.yaml"


def repository_index(repo: str, *, timeout: float = INDEX_TIMEOUT) -> Any:
    """The parsed index.yaml of the helm repository at repo (one download serves every chart
    of that repository), downloaded within `timeout` seconds in all (health.http)."""
    url = index_url(repo)
    try:
        response = http.get(url, timeout)
    except http.DeadlineExceeded as exc:
        raise ChartRepositoryError(f"cannot read {url}: {exc}") from None
    except requests.RequestException as exc:
        raise ChartRepositoryError(f"cannot reach {url}: {_reason(exc)}") from None
    if response.status != 200:
        raise ChartRepositoryError(f"{url} answered HTTP {response.status}")
    try:
        return yaml.load(response.text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        raise ChartRepositoryError(f"{url} is not YAML") from None


def repository_versions(repo: str, chart: str, document: Any) -> list[IndexEntry]:
    """The versions of chart in repo's parsed index (ChartRepositoryError naming the URL)."""
    try:
        return index_entries(document, chart)
    except ValueError as exc:
        raise ChartRepositoryError(f"{index_url(repo)}: {exc}") from None


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause (connection refused, name not known), not urllib3's whole chain."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(cause) or type(cause).__name__
    return text.rsplit("] ", 1)[-1] if "] " in text else text


def oci_chart_version(runner: Runner, helm: str, ref: str, *, devel: bool = False,
                      version: str | None = None) -> str:
    """The version helm resolves for an oci:// chart: the newest tag (pre-releases only with
    devel), or exactly `version` when it exists. `helm show chart REF`, read from the
    Chart.yaml it prints."""
    argv = [helm, "show", "chart", ref]
    if version:
        argv += ["--version", version]
    elif devel:
        argv.append("--devel")
    try:
        proc = runner.run(argv)
    except ToolError as exc:
        reason = (exc.stderr or exc.stdout or exc.summary or "").strip().splitlines()
        raise ChartRepositoryError(
            f"helm show chart {ref} failed: {reason[-1] if reason else f'exit {exc.returncode}'}"
        ) from None
    try:
        metadata = yaml.safe_load(proc.stdout or "")
    except yaml.YAMLError:
        metadata = None
    version = metadata.get("version") if isinstance(metadata, dict) else None
    if not isinstance(version, str) or not version:
        raise ChartRepositoryError(f"helm show chart {ref} printed no chart version")
    return version
