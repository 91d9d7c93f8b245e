"""Commands deploy (and its dry run), diff and verify: run the pipeline, report, exit code."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..config import Federation
from ..errors import EXIT_CHANGES, EXIT_FAILED, EXIT_OK
from ..runner import Runner
from ..verify import Fetch, Retry, VerifyResult, http_get, verify_member

if TYPE_CHECKING:
    from ..actions import helm

Write = Callable[[str], None]
# The same as actions.helm.STAGES / DEFAULT_TIMEOUT (a test keeps them equal): the CLI needs
# them for --help, and importing the helm adapter (pyhelm3, pydantic) costs every command time.
STAGES = ("auth", "releases", "rollout", "verify")
DEFAULT_TIMEOUT = "10m"


def deploy(
    fed: Federation,
    member: str,
    *,
    runner: Runner,
    progress: Write,
    releases: Sequence[str] = (),
    stages: Sequence[str] = (),
    timeout: str = DEFAULT_TIMEOUT,
    retry: Retry | None = None,
) -> int:
    """Deploy MEMBER (all stages, or the chosen ones); errors propagate to the CLI layer."""
    from ..actions import helm

    report = helm.deploy_member(
        fed, member, runner, releases=list(releases) or None, stages=list(stages) or None,
        timeout=timeout, retry=retry, progress=progress,
    )
    for line in deploy_summary(report):
        progress(line)
    return EXIT_OK


def deploy_summary(report: helm.DeployReport) -> list[str]:
    lines: list[str] = []
    if report.releases:
        done = ", ".join(
            f"{r.name} (revision {r.revision}, {r.status})" if r.revision is not None
            else f"{r.name} ({r.status})"
            for r in report.releases
        )
        lines.append(f"releases: {done}")
    if "rollout" in report.stages:
        lines.append(f"rollout: {len(report.workloads)} deployment(s)/daemonset(s) rolled out")
    if report.verified is not None:
        lines += verify_summary(report.verified)
    lines.append(f"deploy of {report.member} done (stages: {', '.join(report.stages)})")
    return lines


def verify_summary(result: VerifyResult) -> list[str]:
    checks = result.health.get("checks", [])
    versions = ", ".join(f"{k} {v}" for k, v in result.versions.items()
                         if isinstance(v, str | int | float)) or "none listed"
    return [f"verify: {result.member} healthy ({len(checks)} check(s) ok), versions: {versions}"]


def dry_run(
    fed: Federation,
    member: str,
    *,
    runner: Runner,
    out: Write,
    progress: Write,
    releases: Sequence[str] = (),
) -> int:
    """Template and validate every release without a cluster: manifests to out, a summary to
    progress; 1 when a chart could not be fetched or rendered or a manifest is invalid."""
    from ..actions import helm

    report = helm.dry_run_member(fed, member, runner, releases=list(releases) or None,
                                 progress=progress)
    if report.manifests:
        out(report.manifests)
    for line in report.summary_lines():
        progress(line)
    return EXIT_OK if report.ok else EXIT_FAILED


def diff(
    fed: Federation,
    member: str,
    *,
    runner: Runner,
    out: Write,
    progress: Write,
    releases: Sequence[str] = (),
) -> int:
    """What a deploy would change: diffs to out; 0 no change, 3 changes (errors raise: 1)."""
    from ..actions import helm

    report = helm.diff_member(fed, member, runner, releases=list(releases) or None,
                              progress=progress)
    changed = [r for r in report.releases if r.changed]
    for item in changed:
        text = item.text if item.text.endswith("\n") else item.text + "\n"
        out(f"# release {item.release.name} (namespace {item.release.namespace})\n{text}")
    if changed:
        progress(f"diff of {report.member} ({report.method}): {len(changed)} of "
                 f"{len(report.releases)} release(s) would change: "
                 f"{', '.join(r.release.name for r in changed)}")
        return EXIT_CHANGES
    progress(f"diff of {report.member} ({report.method}): no change")
    return EXIT_OK


def verify(
    fed: Federation,
    member: str,
    *,
    out: Write,
    progress: Write,
    retry: Retry | None = None,
    fetch: Fetch = http_get,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """The verify stage alone (any member, external ones too): /health and /versions with
    retries; the result as JSON on out. VerificationError (exit 1) when it fails."""
    result = verify_member(fed.member(member), retry, fetch=fetch, sleep=sleep,
                           progress=progress)
    out(json.dumps({"member": result.member, "health": result.health,
                    "versions": result.versions}, indent=2) + "\n")
    for line in verify_summary(result):
        progress(line)
    return EXIT_OK
