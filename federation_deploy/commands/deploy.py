"""Commands deploy (and its dry run), diff and verify: the pipelines, their reports, exit codes.

The helm and kubectl adapters only adapt; the stages, their order, what a failing stage stops
and the report text live here. The member is resolved (and refused when external) once, at the
edge, by `require_deployable`, and passed down as a `Member`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from federation_deploy.commands.deploy_dry_run import (
    DryRunReport,
    ReleaseFailure,
    TemplatedRelease,
    dry_run_member,
)
from federation_deploy.commands.deploy_hooks import HOOKS, needs_cluster, run_hooks, split_requested
from federation_deploy.config import Federation, Hook, Member, Release
from federation_deploy.errors import EXIT_CHANGES, EXIT_FAILED, EXIT_OK, ToolError, UsageError
from federation_deploy.health.probe import Fetch, Retry, VerifyResult, http_get, verify_member
from federation_deploy.runner import Runner
from federation_deploy.values.manifests import manifest_diff
from federation_deploy.values.render import (
    RenderedRelease,
    describe_chart,
    missing_terraform_outputs,
    render_releases,
    require_deployable,
)

if TYPE_CHECKING:
    from federation_deploy.actions.helm import DeployedRelease, Helm
    from federation_deploy.actions.kube_auth import ClusterTools

# the edge's one check, re-exported for the CLI; the dry run's names, for callers of this module
__all__ = ["DryRunReport", "ReleaseFailure", "TemplatedRelease", "dry_run_member",
           "require_deployable"]

Write = Callable[[str], None]
Progress = Callable[[str], None]
# The deploy's stages in their fixed order. The helm adapter (pyhelm3, pydantic) is imported
# only when a command runs it: the CLI needs these for --help, and importing it costs time.
STAGES = ("auth", "releases", "rollout", "verify")
# what --stage takes besides the stages: `hooks` (every hook of the member) or a hook's name
STAGE_CHOICES = (*STAGES, HOOKS)
CLUSTER_STAGES = frozenset({"auth", "releases", "rollout"})
DEFAULT_TIMEOUT = "10m"  # the same as actions.helm.DEFAULT_TIMEOUT (a test keeps them equal)


def _noop(_message: str) -> None:
    pass


def prime_versions_url(fed: Federation, member: Member) -> str | None:
    """Where the prime's /versions are, for a member whose versions must equal them (the
    redirector's rule); None for the prime itself."""
    prime = next((m for m in fed.routed if m.prime), None)
    return None if prime is None or prime.name == member.name else prime.versions_url


# --------------------------------------------------------------------------------------------
# Deploy: auth, releases in order, rollout, verify; a failing stage stops the later ones


@dataclass
class DeployReport:
    member: str
    stages: tuple[str, ...]
    helm_version: str | None = None
    server_version: str | None = None
    releases: list[DeployedRelease] = field(default_factory=list)
    workloads: list[str] = field(default_factory=list)
    verified: VerifyResult | None = None
    hooks: list[str] = field(default_factory=list)  # the hooks that ran, in order
    crds: list[str] = field(default_factory=list)  # the CRD sources applied


def normalise_stages(stages: Iterable[str] | None) -> tuple[str, ...]:
    """Stages in their fixed order. `releases` brings `rollout` (a release is deployed once its
    workloads have rolled out) and both need `auth`."""
    chosen = set(stages or STAGES)
    unknown = chosen - set(STAGES)
    if unknown:
        raise UsageError(f"unknown stage(s) {', '.join(sorted(unknown))} "
                         f"(stages: {', '.join(STAGES)})")
    if "releases" in chosen:
        chosen.add("rollout")
    if chosen & {"releases", "rollout"}:
        chosen.add("auth")
    return tuple(s for s in STAGES if s in chosen)


def plan_stages(requested: Sequence[str] | None, member: Member
                ) -> tuple[tuple[str, ...], tuple[Hook, ...]]:
    """The stages and hooks a deploy runs: all of them by default; else the requested
    stages (normalised) and hooks (`hooks` or hook names), with auth when a chosen hook
    needs the cluster."""
    if not requested:
        return STAGES, member.hooks
    names, hooks = split_requested(requested, member)
    chosen = set(normalise_stages(names)) if names else set()
    if needs_cluster(hooks):
        chosen.add("auth")
    return tuple(s for s in STAGES if s in chosen), hooks


def deploy_member(
    fed: Federation,
    member: Member,
    runner: Runner,
    *,
    releases: Sequence[str] | None = None,
    stages: Iterable[str] | None = None,
    timeout: str = DEFAULT_TIMEOUT,
    helm_executable: str | None = None,
    tools: ClusterTools | None = None,
    retry: Retry | None = None,
    verify_fetch: Fetch = http_get,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
    update_dependencies: bool = False,
) -> DeployReport:
    """Deploy a member: credentials into a private KUBECONFIG (auth), every release in config
    order with helm upgrade --install --atomic --wait (releases; a release's CRDs applied
    first, a chart directory's dependencies built), rollout status of the release
    namespaces (rollout), then /health and /versions (verify). The member's hooks run after
    the stage each names.

    Each failing stage raises (ToolError / VerificationError) naming the stage and release,
    and the later stages do not run. The temporary KUBECONFIG is gone when this returns or
    raises. `tools`, `helm_executable`, `verify_fetch` and `sleep` serve tests and the sandbox.
    """
    say = progress or _noop
    chosen, hooks = plan_stages(list(stages) if stages else None, member)
    report = DeployReport(member.name, chosen)
    if CLUSTER_STAGES & set(chosen):
        from federation_deploy.actions.helm import Helm, secret_strings
        from federation_deploy.actions.kube_auth import find_cluster_tools

        # render before any tool runs: invalid values never reach a cluster
        rendered = render_releases(fed, member, releases)
        if "releases" in chosen:  # the saved outputs matter only to the releases stage
            missing = missing_terraform_outputs(fed, member, releases)
            if missing:
                raise UsageError(f"refusing to deploy {member.name}: {missing}")
        tools = tools or find_cluster_tools(member)
        helm = Helm(runner, executable=helm_executable, timeout=timeout,
                    secrets=secret_strings(rendered))
        report.helm_version = helm.version
        _cluster_stages(fed, member, runner, helm, tools, rendered, (chosen, hooks), timeout,
                        report, say, update_dependencies)
    if "verify" in chosen:
        say(f"stage verify: {member.name}")
        report.verified = verify_member(
            member, retry, fetch=verify_fetch, sleep=sleep, progress=say,
            pod_headroom=fed.redirector.pod_headroom,
            prime_versions_url=prime_versions_url(fed, member),
        )
    report.hooks += run_hooks(runner, fed, member, hooks, "verify", kubeconfig=None, say=say)
    return report


def _cluster_stages(
    fed: Federation,
    member: Member,
    runner: Runner,
    helm: Helm,
    tools: ClusterTools,
    rendered: list[RenderedRelease],
    plan: tuple[tuple[str, ...], tuple[Hook, ...]],
    timeout: str,
    report: DeployReport,
    say: Progress,
    update_dependencies: bool = False,
) -> None:
    from federation_deploy.actions.helm import secret_strings
    from federation_deploy.actions.kube_auth import cluster_access, probe_cluster
    from federation_deploy.actions.kubectl import apply_crds, rollout_status

    chosen, hooks = plan
    say(f"stage auth: credentials for {member.name} ({member.cloud})")
    try:
        with cluster_access(fed, member, runner, tools) as access:
            report.server_version = probe_cluster(runner, access)
            _note_version_skew(member, report.server_version, say)
            helm.use_cluster(access)

            def hooks_after(stage: str) -> None:
                report.hooks.extend(run_hooks(runner, fed, member, hooks, stage,
                                              kubeconfig=access.kubeconfig, say=say))

            hooks_after("auth")
            if "releases" in chosen and any(h.after == "auth" for h in hooks):
                # as deploy.py: the hooks after auth (network bans) write values files
                # (config/common/datacenter-*.yaml, secrets/config/common/bans.yaml) that the
                # charts must get, so the values are rendered again from the files as they are
                # now; the render above only kept invalid values away from the cluster
                say("stage releases: values rendered again with what the hooks after auth wrote")
                rendered[:] = render_releases(fed, member, [r.release.name for r in rendered],
                                              reread=True)
                helm.command.secrets.update(secret_strings(rendered))
            if "releases" in chosen:
                if _publishes_weights(fed, member, rendered):
                    from federation_deploy.actions.helm import check_redirector_publish

                    # a deploy of an older commit must not publish its (older) weights over
                    # a ramp step or drain taken since
                    say("stage releases: the redirector's weights are generation "
                        f"{fed.generation}; comparing with the deployed release")
                    check_redirector_publish(helm, fed)

                def crds(release: Release) -> None:
                    say(f"stage releases: CRDs of {release.name}: {release.crds}")
                    assert release.crds is not None
                    report.crds.append(apply_crds(runner, access, release.crds, fed.config_dir))

                _release_stage(helm, rendered, timeout, report, say, crds, update_dependencies)
            hooks_after("releases")
            if "rollout" in chosen:
                namespaces = list(dict.fromkeys(r.release.namespace for r in rendered))
                say(f"stage rollout: namespaces {', '.join(namespaces)}")
                report.workloads = rollout_status(runner, access, namespaces, timeout=timeout,
                                                  progress=say)
            hooks_after("rollout")
    except ToolError as exc:
        # only the credential tools (gcloud, aws) fail outside a named stage
        raise _auth_error(exc, member) from None
    finally:
        helm.use_cluster(None)
        helm.close()


def _publishes_weights(fed: Federation, member: Member, rendered: list[RenderedRelease]) -> bool:
    """Does this deploy upgrade the redirector release (and so publish the weights)?"""
    return member.name == fed.redirector.member and any(
        r.release.name == fed.redirector.release for r in rendered)


def _auth_error(exc: ToolError, member: Member) -> ToolError:
    """A failure getting credentials, named as the auth stage (a staged error is kept)."""
    return exc.with_context(
        f"could not get credentials for member {member.name!r} ({member.cloud})",
        hint=exc.hint or _credentials_hint(member), stage="auth",
    )


def _credentials_hint(member: Member) -> str:
    if member.cloud == "gcp":
        return "log in with `gcloud auth login` (or workload identity in CI) and check the " \
               "cluster's name, project and location in federation.yaml"
    if member.cloud == "aws":
        return "check the AWS credentials (`aws sts get-caller-identity`) and the cluster's " \
               "name and region in federation.yaml"
    return "check the member's kubeconfig in the secrets directory"


def _note_version_skew(member: Member, server: str | None, say: Progress) -> None:
    if not server or not member.kubernetes_version:
        return
    match = re.match(r"v?(\d+\.\d+)", server)
    if match and match.group(1) != member.kubernetes_version:
        say(f"warning: {member.name} runs Kubernetes {server}, config says "
            f"kubernetes_version {member.kubernetes_version} (dry-run validates against config)")


def _release_stage(
    helm: Helm, rendered: list[RenderedRelease], timeout: str, report: DeployReport,
    say: Progress, apply_crds: Callable[[Release], None], update_dependencies: bool = False,
) -> None:
    # every chart first: a chart that cannot be fetched stops the deploy before any release
    # has changed, instead of half-way through
    charts = []
    for item in rendered:
        say(f"stage releases: fetch {describe_chart(item.release)}")
        try:
            if helm.build_dependencies(item.release, update=update_dependencies,
                                       progress=say):
                say(f"stage releases: dependencies of {item.release.chart} built")
            charts.append(helm.fetch_chart(item.release))
        except ToolError as exc:
            raise _stage_error(exc, "releases", exc.summary or "",
                               "nothing was deployed") from None
    for index, (item, chart) in enumerate(zip(rendered, charts, strict=True)):
        release = item.release
        if release.crds:
            apply_crds(release)  # before the chart: helm never upgrades CRDs
        say(f"stage releases: helm upgrade {release.helm_name} ({describe_chart(release)}) "
            f"in namespace {release.namespace}")
        try:
            report.releases.append(helm.upgrade(item, chart, timeout=timeout))
        except ToolError as exc:
            later = [r.release.name for r in rendered[index + 1:]]
            rest = f"not attempted: {', '.join(later)}" if later else "it was the last release"
            raise _stage_error(
                exc, "releases",
                f"release {release.name!r} ({describe_chart(release)}, namespace "
                f"{release.namespace}) failed to install or upgrade; --atomic rolled it back",
                rest,
            ) from None


def _stage_error(exc: ToolError, stage: str, what: str, after: str) -> ToolError:
    from federation_deploy.actions.kube_auth import is_unreachable

    hint = exc.hint
    if is_unreachable(exc.stderr):
        hint = "the cluster stopped answering: check the network path and credentials, then " \
               "deploy again (helm upgrade is idempotent)"
    return exc.with_context(f"{what} ({after})", hint=hint, stage=stage)


# --------------------------------------------------------------------------------------------
# Diff: what a deploy would change


@dataclass(frozen=True)
class ReleaseDiff:
    release: Release
    text: str

    @property
    def changed(self) -> bool:
        return bool(self.text.strip())


@dataclass
class DiffReport:
    member: str
    method: str  # "helm-diff" or "manifests"
    releases: list[ReleaseDiff] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(r.changed for r in self.releases)


def diff_member(
    fed: Federation,
    member: Member,
    runner: Runner,
    *,
    releases: Sequence[str] | None = None,
    helm_executable: str | None = None,
    tools: ClusterTools | None = None,
    progress: Progress | None = None,
) -> DiffReport:
    """Compare each release with what is deployed: the helm-diff plugin when installed,
    otherwise `helm template` against `helm get manifest`, object by object."""
    from federation_deploy.actions.helm import Helm, secret_strings
    from federation_deploy.actions.kube_auth import (
        cluster_access,
        find_cluster_tools,
        probe_cluster,
    )

    say = progress or _noop
    rendered = render_releases(fed, member, releases)
    tools = tools or find_cluster_tools(member)
    secrets = secret_strings(rendered)
    helm = Helm(runner, executable=helm_executable, secrets=secrets)
    try:
        with cluster_access(fed, member, runner, tools) as access:
            probe_cluster(runner, access)
            helm.use_cluster(access)
            plugin = helm.has_diff_plugin()
            report = DiffReport(member.name, "helm-diff" if plugin else "manifests")
            say(f"diff: {member.name} with {report.method}")
            for item in rendered:
                release = item.release
                try:
                    if helm.build_dependencies(release, progress=say):
                        say(f"diff: dependencies of {release.chart} built")
                    if plugin:
                        text = helm.diff_upgrade(item)
                    else:
                        new = helm.template(item, kube_version=member.kubernetes_version,
                                            is_upgrade=True, include_crds=False)
                        old = helm.get_manifest(release) or ""
                        text = manifest_diff(old, new, release.namespace, secrets)
                except ToolError as exc:
                    raise _stage_error(exc, "diff", f"cannot compare release {release.name!r} "
                                       f"({describe_chart(release)})",
                                       "nothing was changed") from None
                say(f"diff: {release.name}: {'changes' if text.strip() else 'no change'}")
                report.releases.append(ReleaseDiff(release, text))
    except ToolError as exc:
        raise _auth_error(exc, member) from None
    finally:
        helm.use_cluster(None)
        helm.close()
    return report


# --------------------------------------------------------------------------------------------
# The commands: run a pipeline, say what it did, return the exit code


def deploy(
    fed: Federation,
    member: Member,
    *,
    runner: Runner,
    progress: Write,
    releases: Sequence[str] = (),
    stages: Sequence[str] = (),
    timeout: str = DEFAULT_TIMEOUT,
    retry: Retry | None = None,
    update_dependencies: bool = False,
    on_report: Callable[[DeployReport], None] | None = None,
) -> int:
    """Deploy member (all stages, or the chosen ones); errors propagate to the CLI layer.
    on_report gets the report of a finished deploy (the CLI's CI job summary)."""
    report = deploy_member(
        fed, member, runner, releases=list(releases) or None, stages=list(stages) or None,
        timeout=timeout, retry=retry, progress=progress,
        update_dependencies=update_dependencies,
    )
    for line in deploy_summary(report):
        progress(line)
    if on_report is not None:
        on_report(report)
    return EXIT_OK


def deploy_summary(report: DeployReport) -> list[str]:
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
    if report.hooks:
        lines.append(f"hooks: {', '.join(report.hooks)}")
    lines.append(f"deploy of {report.member} done (stages: {', '.join(report.stages)})")
    return lines


def verify_summary(result: VerifyResult) -> list[str]:
    checks = result.health.get("checks", [])
    versions = ", ".join(f"{k} {v}" for k, v in result.versions.items()
                         if isinstance(v, str | int | float)) or "none listed"
    return [f"verify: {result.member} healthy ({len(checks)} check(s) ok), versions: {versions}"]


def dry_run(
    fed: Federation,
    member: Member,
    *,
    runner: Runner,
    out: Write,
    progress: Write,
    releases: Sequence[str] = (),
    without_secrets: bool = False,
    update_dependencies: bool = False,
) -> int:
    """Template and validate every release without a cluster: manifests to out, a summary to
    progress; 1 when a chart could not be fetched or rendered or a manifest is invalid."""
    report = dry_run_member(fed, member, runner, releases=list(releases) or None,
                            progress=progress, without_secrets=without_secrets,
                            update_dependencies=update_dependencies)
    if report.manifests:
        out(report.manifests)
    for line in report.summary_lines():
        progress(line)
    return EXIT_OK if report.ok else EXIT_FAILED


def diff(
    fed: Federation,
    member: Member,
    *,
    runner: Runner,
    out: Write,
    progress: Write,
    releases: Sequence[str] = (),
) -> int:
    """What a deploy would change: diffs to out; 0 no change, 3 changes (errors raise: 1)."""
    report = diff_member(fed, member, runner, releases=list(releases) or None,
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
    target = fed.member(member)
    result = verify_member(target, retry, fetch=fetch, sleep=sleep, progress=progress,
                           pod_headroom=fed.redirector.pod_headroom,
                           prime_versions_url=prime_versions_url(fed, target))
    out(json.dumps({"member": result.member, "health": result.health,
                    "versions": result.versions}, indent=2) + "\n")
    for line in verify_summary(result):
        progress(line)
    return EXIT_OK
