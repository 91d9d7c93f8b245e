"""Command `deploy` (and its dry run): the pipeline, its stages, its report, the exit code.

The helm and kubectl adapters only adapt; the stages, their order, what a failing stage stops
and the report text live here. The member is resolved (and refused when external) once, at the
edge, by `require_deployable`, and passed down as a `Member`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from federation_deploy.actions.notify import Event
from federation_deploy.commands.announce import announced
from federation_deploy.commands.deploy_dry_run import (
    DryRunReport,
    ReleaseFailure,
    TemplatedRelease,
    dry_run_member,
)
from federation_deploy.commands.deploy_hooks import (
    needs_cluster,
    run_hooks,
    split_requested,
    without_kubeconfig,
)
from federation_deploy.commands.deploy_recover import check_stuck_releases
from federation_deploy.commands.freeze import refuse_when_frozen
from federation_deploy.commands.result import CommandResult
from federation_deploy.commands.step_summary import deploy_markdown
from federation_deploy.commands.verify import prime_versions_url, verify_summary
from federation_deploy.config import Federation, Hook, Member, Release
from federation_deploy.durations import Clock
from federation_deploy.errors import (
    EXIT_FAILED,
    EXIT_OK,
    FederationDeployError,
    Frozen,
    ToolError,
    UsageError,
)
from federation_deploy.health.probe import Fetch, Retry, VerifyResult, http_get, verify_member
from federation_deploy.progress import Progress, quiet
from federation_deploy.runner import Runner
from federation_deploy.values.locked_files import require_unlocked
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
# The deploy's stages in their fixed order. The helm adapter (pyhelm3, pydantic) is imported
# only when a command runs it: the CLI needs these for --help, and importing it costs time.
STAGES = ("auth", "releases", "rollout", "verify")
CLUSTER_STAGES = frozenset({"auth", "releases", "rollout"})
DEFAULT_TIMEOUT = "10m"  # the same as actions.helm.DEFAULT_TIMEOUT (a test keeps them equal)


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
    # the person's options (--release, --timeout) that a suggested command keeps
    options: tuple[str, ...] = ()


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
    planned: tuple[tuple[str, ...], tuple[Hook, ...]] | None = None,
    recover: bool = False,
) -> DeployReport:
    """Deploy a member: credentials into a private KUBECONFIG (auth), every release in config
    order with helm upgrade --install --atomic --wait (releases; a release's CRDs applied
    first, a chart directory's dependencies built), rollout status of the release
    namespaces (rollout), then /health and /versions (verify). The member's hooks run after
    the stage each names.

    Each failing stage raises (ToolError / VerificationError) naming the stage and release,
    and the later stages do not run. The temporary KUBECONFIG is gone when this returns or
    raises. `planned` is the command's DeployPlan (stages and hooks worked out once); `stages`
    plans them here instead. `tools`, `helm_executable`, `verify_fetch` and `sleep` serve
    tests and the sandbox.
    """
    say = progress or quiet
    chosen, hooks = planned or plan_stages(list(stages) if stages else None, member)
    options = tuple(word for name in releases or () for word in ("--release", name))
    if timeout != DEFAULT_TIMEOUT:
        options += ("--timeout", timeout)
    report = DeployReport(member.name, chosen, options=options)

    def verify_stage(kubeconfig: Path | None) -> None:
        """verify, then its hooks: inside the cluster access when the run has one, so the
        hooks after verify get the run's kubeconfig like every other hook."""
        if "verify" in chosen:
            say(f"stage verify: {member.name}")
            report.verified = verify_member(
                member, retry, fetch=verify_fetch, sleep=sleep, progress=say,
                pod_headroom=fed.redirector.pod_headroom,
                prime_versions_url=prime_versions_url(fed, member),
            )
        report.hooks.extend(run_hooks(runner, fed, member, hooks, "verify",
                                      kubeconfig=kubeconfig, say=say))

    if fed.sandbox is not None:
        # a sandbox's members are stand-ins: its deploy never reaches a cluster (issue 30)
        from federation_deploy.commands.deploy_sandbox import sandbox_stages

        sandbox_stages(fed, member, chosen, releases, hooks, say)
        report.stages = tuple(s for s in chosen if s in ("releases", "verify"))
        hooks = ()
        verify_stage(None)
    elif CLUSTER_STAGES & set(chosen):
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
                        report, say, update_dependencies, recover, then=verify_stage)
    else:
        without_kubeconfig(member, hooks, chosen, say)
        verify_stage(None)
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
    recover: bool = False,
    then: Callable[[Path | None], None] | None = None,
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
                    from federation_deploy.traffic.publish import check_redirector_publish

                    # a deploy of an older commit must not publish its (older) weights over
                    # a ramp step or drain taken since
                    say("stage releases: the redirector's weights are generation "
                        f"{fed.generation}; comparing with the deployed release")
                    check_redirector_publish(helm, fed)

                def crds(release: Release) -> None:
                    say(f"stage releases: CRDs of {release.name}: {release.crds}")
                    assert release.crds is not None
                    report.crds.append(apply_crds(runner, access, release.crds, fed.config_dir))

                _release_stage(helm, rendered, timeout, report, say, crds, update_dependencies,
                               recover)
            hooks_after("releases")
            if "rollout" in chosen:
                namespaces = list(dict.fromkeys(r.release.namespace for r in rendered))
                say(f"stage rollout: namespaces {', '.join(namespaces)}")
                report.workloads = rollout_status(runner, access, namespaces, timeout=timeout,
                                                  progress=say)
            hooks_after("rollout")
            if then is not None:
                then(access.kubeconfig)
    except ToolError as exc:
        # only the credential tools (gcloud, aws) fail outside a named stage
        raise auth_error(exc, member) from None
    finally:
        helm.use_cluster(None)
        helm.close()


def _publishes_weights(fed: Federation, member: Member, rendered: list[RenderedRelease]) -> bool:
    """Does this deploy upgrade the redirector release (and so publish the weights)?"""
    return member.name == fed.redirector.member and any(
        r.release.name == fed.redirector.release for r in rendered)


def auth_error(exc: ToolError, member: Member) -> ToolError:
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
    recover: bool = False,
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
            raise stage_error(exc, "releases", exc.summary or "",
                               "nothing was deployed") from None
    # a release left pending (a cancelled run) stops the deploy here, before any upgrade,
    # unless --recover frees it first
    check_stuck_releases(helm, report.member, [r.release for r in rendered], recover=recover,
                         timeout=timeout, say=say, options=report.options)
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
            raise stage_error(
                exc, "releases",
                f"release {release.name!r} ({describe_chart(release)}, namespace "
                f"{release.namespace}) failed to install or upgrade; --atomic rolled it back",
                rest,
            ) from None


def stage_error(exc: ToolError, stage: str, what: str, after: str) -> ToolError:
    from federation_deploy.actions.kube_auth import is_unreachable

    hint = exc.hint
    if is_unreachable(exc.stderr):
        hint = "the cluster stopped answering: check the network path and credentials, then " \
               "deploy again (helm upgrade is idempotent)"
    return exc.with_context(f"{what} ({after})", hint=hint, stage=stage)


# --------------------------------------------------------------------------------------------
# The commands: plan once, run the pipeline, say what it did


@dataclass(frozen=True)
class DeployPlan:
    """What one deploy runs, worked out once at the edge: the member, its stages and hooks,
    and the releases chosen (empty: all of them)."""
    member: Member
    stages: tuple[str, ...]
    hooks: tuple[Hook, ...]
    releases: tuple[str, ...] = ()

    @property
    def release_names(self) -> list[str]:
        return list(self.releases) or [r.name for r in self.member.releases]


def _rollback_by_hand(member: Member, releases: Sequence[str]) -> str:
    """How to free a stuck release while a freeze refuses `deploy --recover` (which upgrades
    after its rollback): helm's own commands, per release."""
    chosen = [r for r in member.releases if not releases or r.name in releases]
    lines = ["To free a release stuck in pending-* during the freeze, by hand (a rollback "
             "changes no config; the upgrade waits for the freeze's end):"]
    for release in chosen:
        ns = release.namespace
        lines.append(f"  helm history {release.helm_name} --namespace {ns}   # the last "
                     "`deployed` revision: N")
        lines.append(f"  helm rollback {release.helm_name} N --namespace {ns} --wait")
    return "\n".join(lines)


def plan_deploy(fed: Federation, member: str, releases: Sequence[str] = (),
                stages: Sequence[str] = (), *, clock: Clock | None = None,
                progress: Progress | None = None, recover: bool = False) -> DeployPlan:
    """Resolve the member (external ones refused), its stages and hooks (unknown names: exit
    2), and refuse before anything is asked when the federation is frozen (a deploy that
    changes the cluster: releases or hooks; --recover too, as it upgrades after its rollback:
    the refusal then says how to roll a stuck release back by hand) or a file the deploy
    needs is git-crypt locked."""
    target = require_deployable(fed, member)
    chosen, hooks = plan_stages(list(stages) or None, target)
    if "releases" in chosen or hooks:
        try:
            refuse_when_frozen(fed, f"deploy {member}" + (" --recover" if recover else ""),
                               clock, progress)
        except Frozen as refused:
            if not recover:
                raise
            by_hand = _rollback_by_hand(target, releases)
            raise Frozen(f"{refused}\n{by_hand}",
                         f"{refused.step_summary}\n{by_hand}\n") from None
    require_unlocked(fed, target, releases, chosen)  # every locked file, before the question
    return DeployPlan(target, chosen, hooks, tuple(releases))


def deploy(
    fed: Federation,
    plan: DeployPlan,
    *,
    runner: Runner,
    progress: Write,
    timeout: str = DEFAULT_TIMEOUT,
    retry: Retry | None = None,
    update_dependencies: bool = False,
    recover: bool = False,
) -> CommandResult:
    """Deploy the planned member (all stages, or the chosen ones); a failure is the result's
    error. Progress streams as the stages run; the result carries the closing lines and the
    CI job summary. The deploy is announced at its end (Grafana, the webhook), success or
    failure. recover: a release stuck in a pending state is rolled back (or uninstalled)
    first, else it stops the deploy before any upgrade."""
    member = plan.member.name
    try:
        report = deploy_member(
            fed, plan.member, runner, releases=list(plan.releases) or None,
            planned=(plan.stages, plan.hooks), timeout=timeout, retry=retry, progress=progress,
            update_dependencies=update_dependencies, recover=recover,
        )
    except FederationDeployError as exc:
        # announced, success or failure; the error is then reported as every other
        failure = exc.render().strip().splitlines()[0] if exc.render().strip() else "failed"
        return announced(fed, Event("deploy", "deploy", failure, member, ok=False),
                         CommandResult(error=exc))
    lines = deploy_summary(report)
    return announced(fed, Event("deploy", "deploy", "; ".join(lines[-2:]), member),
                     CommandResult(messages=tuple(lines), summary=deploy_markdown(report)))


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
    ran = f"stages: {', '.join(report.stages)}" if report.stages else "no stage ran"
    lines.append(f"deploy of {report.member} done ({ran})")
    return lines


def dry_run(
    fed: Federation,
    member: str,
    *,
    runner: Runner,
    progress: Write,
    releases: Sequence[str] = (),
    without_secrets: bool = False,
    update_dependencies: bool = False,
) -> CommandResult:
    """Template and validate every release without a cluster: manifests on stdout, a summary
    in the messages; exit 1 when a chart could not be fetched or rendered or a manifest is
    invalid."""
    report = dry_run_member(fed, require_deployable(fed, member), runner,
                            releases=list(releases) or None, progress=progress,
                            without_secrets=without_secrets,
                            update_dependencies=update_dependencies)
    return CommandResult(stdout=report.manifests, messages=tuple(report.summary_lines()),
                         exit_code=EXIT_OK if report.ok else EXIT_FAILED)
