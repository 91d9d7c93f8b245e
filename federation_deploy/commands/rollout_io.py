"""What `rollout` talks to in production: the deploy's stages for a chart's releases, helm
rollback, a member's /health and /versions, the redirector's healthy hosts, and what the
members this tool does not deploy report (commands/rollout.py runs the recipe)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from federation_deploy.config import Federation, Member
from federation_deploy.durations import Clock
from federation_deploy.errors import VerificationError
from federation_deploy.progress import Progress, quiet
from federation_deploy.runner import Runner
from federation_deploy.traffic.ramp.engine import Publish, StepHook

# (federation, member with the version to deploy, the chart's releases) -> deployed
DeployReleases = Callable[[Federation, Member, tuple[str, ...]], None]
# (federation, member, the chart's releases) -> `helm rollback` of each
RollBack = Callable[[Federation, Member, tuple[str, ...]], None]
# (federation, member, /versions key, version) -> VerificationError unless healthy on it
VerifyVersion = Callable[[Federation, Member, str, str], None]
HealthyHosts = Callable[[], frozenset[str] | None]
# member -> its /versions (None when it cannot be read)
ReportedVersions = Callable[[Member], dict[str, object] | None]


def read_versions(member: Member) -> dict[str, object] | None:
    """A member's /versions as it answers now (None: unreachable or not JSON)."""
    from federation_deploy.health.probe import fetch_prime_versions

    return fetch_prime_versions(member.versions_url, timeout=5.0)


@dataclass
class RolloutIO:
    """What a rollout talks to; tests hand in the recorded helm fake and stand-ins."""

    publish: Publish
    deploy: DeployReleases
    rollback: RollBack
    verify: VerifyVersion
    clock: Clock = field(default_factory=Clock)
    progress: Progress = quiet
    on_step: StepHook | None = None  # ring 1's steps, when the redirector serves each
    healthy: HealthyHosts = lambda: None  # the redirector's healthy hosts (None: unknown)
    reported: ReportedVersions = read_versions  # a member's /versions now


def external_versions(fed: Federation, key: str, reported: ReportedVersions,
                      known: dict[str, str] | None = None) -> dict[str, str]:
    """The routed members this tool does not deploy that report key in their /versions, with
    the version they report now (known: what was recorded, kept when one cannot be read)."""
    found: dict[str, str] = {}
    for member in fed.members.values():
        if not member.routed or member.deployable:
            continue
        versions = reported(member)
        got = versions.get(key) if isinstance(versions, dict) else None
        if isinstance(got, str) and got:
            found[member.name] = got
        elif known and member.name in known:
            found[member.name] = known[member.name]
    return found


def production_io(publisher: Publish, runner: Runner, timeout: str,
                  progress: Progress) -> RolloutIO:
    """The deploy's stages for the chart's releases, helm rollback, verify with the member's
    /health and /versions (the real cluster, or a sandbox's stand-ins)."""
    from federation_deploy.commands.deploy import deploy_member
    from federation_deploy.health.probe import verify_member

    def deploy(fed: Federation, member: Member, releases: tuple[str, ...]) -> None:
        deploy_member(fed, member, runner, releases=releases,
                      stages=("auth", "releases", "rollout"), timeout=timeout,
                      progress=progress)

    def rollback(fed: Federation, member: Member, releases: tuple[str, ...]) -> None:
        if fed.sandbox is not None:
            from federation_deploy.commands.deploy_sandbox import sandbox_versions

            sandbox_versions(fed, member, releases, rolled_back=True, say=progress)
            return
        helm_rollback(fed, member, releases, runner, timeout)

    def verify(fed: Federation, member: Member, key: str, version: str) -> None:
        result = verify_member(member, pod_headroom=fed.redirector.pod_headroom,
                               progress=progress, sleep=time.sleep)
        check_version(member, result.versions, key, version)

    return RolloutIO(publish=publisher, deploy=deploy, rollback=rollback, verify=verify,
                     progress=progress)


def healthy_hosts(redirector_url: str) -> HealthyHosts:
    """The redirector's healthy hosts (its /active_hosts), for `canary: smallest`; None when
    it cannot be asked (then config alone decides, and the ring's checks catch the rest)."""
    from federation_deploy.traffic.live import LiveError, fetch_active_hosts

    def healthy() -> frozenset[str] | None:
        try:
            return frozenset(fetch_active_hosts(redirector_url))
        except LiveError:
            return None

    return healthy


def check_version(member: Member, versions: object, key: str, version: str) -> None:
    got = versions.get(key) if isinstance(versions, dict) else None
    if got != version:
        raise VerificationError(f"{member.name} reports {key} {got!r} at {member.versions_url}, "
                                f"not {version}", stage="verify")


def helm_rollback(fed: Federation, member: Member, releases: tuple[str, ...], runner: Runner,
                  timeout: str, *, helm_executable: str | None = None,
                  tools: object | None = None) -> None:
    """`helm rollback` of the member's releases with its own credentials."""
    from federation_deploy.actions.helm import Helm
    from federation_deploy.actions.kube_auth import (
        ClusterTools,
        cluster_access,
        find_cluster_tools,
    )

    helm = Helm(runner, executable=helm_executable, timeout=timeout)
    found = tools if isinstance(tools, ClusterTools) else find_cluster_tools(member)
    with cluster_access(fed, member, runner, found) as access:
        helm.use_cluster(access)
        try:
            for name in releases:
                helm.rollback(member.release(name), None, timeout=timeout)
        finally:
            helm.use_cluster(None)
            helm.close()
