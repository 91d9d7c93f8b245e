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

from ..config import Federation, Member, Release
from ..errors import EXIT_CHANGES, EXIT_FAILED, EXIT_OK, ToolError, UsageError
from ..manifests import (
    displayable_manifests,
    manifest_diff,
    parse_manifests,
    schema_version_for,
    validate_manifests,
)
from ..render import (
    RenderedRelease,
    describe_chart,
    missing_terraform_outputs,
    render_releases,
    require_deployable,
)
from ..runner import Runner
from ..verify import Fetch, Retry, VerifyResult, http_get, verify_member

if TYPE_CHECKING:
    from ..actions.helm import DeployedRelease, Helm
    from ..actions.kube_auth import ClusterTools
    from ..manifests import ValidationReport

__all__ = ["require_deployable"]  # the edge's one check, re-exported for the CLI

Write = Callable[[str], None]
Progress = Callable[[str], None]
# The deploy's stages in their fixed order. The helm adapter (pyhelm3, pydantic) is imported
# only when a command runs it: the CLI needs these for --help, and importing it costs time.
STAGES = ("auth", "releases", "rollout", "verify")
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
# Dry run: every release templated (no cluster) and validated


@dataclass
class TemplatedRelease:
    release: Release
    text: str  # for people: Secrets redacted, secret strings censored
    resources: int
    validation: ValidationReport


@dataclass
class ReleaseFailure:
    release: Release
    fetch: bool  # the chart could not be fetched (otherwise: it did not render)
    reason: str
    error: ToolError

    def describe(self) -> str:
        what = "could not be fetched" if self.fetch else "did not render"
        return f"chart {describe_chart(self.release)} {what}: {self.reason}"


@dataclass
class DryRunReport:
    member: str
    kubernetes_version: str | None
    schema_version: str
    schema_note: str | None
    helm_version: str
    templated: list[TemplatedRelease] = field(default_factory=list)
    failed: list[ReleaseFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not any(t.validation.invalid for t in self.templated)

    @property
    def manifests(self) -> str:
        return "".join(t.text for t in self.templated)

    @property
    def summary(self) -> str:
        return "\n".join(self.summary_lines())

    def summary_lines(self) -> list[str]:
        """For people (stderr): one line per release, then the verdict."""
        lines = [f"dry-run of {self.member}: helm {self.helm_version}, validated against "
                 f"Kubernetes {self.schema_version} schemas"]
        if self.schema_note:
            lines.append(f"  note: {self.schema_note}")
        for item in self.templated:
            v = item.validation
            chart = describe_chart(item.release)
            if v.invalid:
                lines.append(f"  INVALID {item.release.name} ({chart}): {len(v.invalid)} of "
                             f"{item.resources} object(s) invalid")
                lines += [f"      {problem}" for problem in v.invalid]
            else:
                lines.append(f"  ok      {item.release.name} ({chart}): {v.valid} object(s) "
                             "valid")
            if v.unchecked:
                lines.append(f"          not validated (custom kinds, no schema): "
                             f"{', '.join(v.unchecked)}")
        for failure in self.failed:
            lines.append(f"  FAILED  {failure.release.name}: {failure.describe()}")
        total = len(self.templated) + len(self.failed)
        if self.ok:
            lines.append(f"dry-run ok: {total} release(s) rendered and valid")
            return lines
        unfetched = [f.release.name for f in self.failed if f.fetch]
        unrendered = [f.release.name for f in self.failed if not f.fetch]
        invalid = [t.release.name for t in self.templated if t.validation.invalid]
        problems = []
        if unfetched:
            problems.append(f"{len(unfetched)} of {total} release(s) could not be fetched "
                            f"({', '.join(unfetched)}; offline? --release NAME restricts the "
                            "run)")
        if unrendered:
            problems.append(f"{len(unrendered)} did not render ({', '.join(unrendered)})")
        if invalid:
            problems.append(f"{len(invalid)} have invalid manifests ({', '.join(invalid)})")
        lines.append("dry-run failed: " + "; ".join(problems))
        return lines


def dry_run_member(
    fed: Federation,
    member: Member,
    runner: Runner,
    *,
    releases: Sequence[str] | None = None,
    helm_executable: str | None = None,
    progress: Progress | None = None,
) -> DryRunReport:
    """Render every release (or the named ones) with `helm template` and validate the objects
    against the member's Kubernetes version. Needs no cluster. A release whose chart cannot be
    fetched or rendered is reported in `failed` and the others still go on."""
    from ..actions.helm import Helm, first_line, is_fetch_failure, secret_strings

    say = progress or _noop
    rendered = render_releases(fed, member, releases)
    if missing := missing_terraform_outputs(fed, member, releases):
        say(f"warning: {missing} (a deploy would refuse)")
    secrets = secret_strings(rendered)
    helm = Helm(runner, executable=helm_executable, secrets=secrets)
    schema_version, note = schema_version_for(member.kubernetes_version)
    report = DryRunReport(member.name, member.kubernetes_version, schema_version, note,
                          helm.version)
    for item in rendered:
        release = item.release
        say(f"template: {release.name} ({describe_chart(release)})")
        try:
            raw = helm.template(item, kube_version=member.kubernetes_version)
        except ToolError as exc:
            report.failed.append(ReleaseFailure(
                release, is_fetch_failure(release, exc.stderr), first_line(exc.stderr), exc))
            continue
        docs = parse_manifests(raw)
        header = (f"# federation-deploy dry-run: member {member.name}, release {release.name} "
                  f"({describe_chart(release)}), namespace {release.namespace}\n")
        report.templated.append(TemplatedRelease(
            release, header + displayable_manifests(raw, secrets), len(docs),
            validate_manifests(docs, schema_version, release.namespace, secrets),
        ))
    return report


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
) -> DeployReport:
    """Deploy a member: credentials into a private KUBECONFIG (auth), every release in config
    order with helm upgrade --install --atomic --wait (releases), rollout status of the
    release namespaces (rollout), then /health and /versions (verify).

    Each failing stage raises (ToolError / VerificationError) naming the stage and release,
    and the later stages do not run. The temporary KUBECONFIG is gone when this returns or
    raises. `tools`, `helm_executable`, `verify_fetch` and `sleep` serve tests and the sandbox.
    """
    say = progress or _noop
    chosen = normalise_stages(stages)
    report = DeployReport(member.name, chosen)
    if CLUSTER_STAGES & set(chosen):
        from ..actions.helm import Helm, secret_strings
        from ..actions.kube_auth import find_cluster_tools

        # render before any tool runs: invalid values never reach a cluster
        rendered = render_releases(fed, member, releases)
        missing = missing_terraform_outputs(fed, member, releases)
        if missing and "releases" in chosen:
            raise UsageError(f"refusing to deploy {member.name}: {missing}")
        tools = tools or find_cluster_tools(member)
        helm = Helm(runner, executable=helm_executable, timeout=timeout,
                    secrets=secret_strings(rendered))
        report.helm_version = helm.version
        _cluster_stages(fed, member, runner, helm, tools, rendered, chosen, timeout, report, say)
    if "verify" in chosen:
        say(f"stage verify: {member.name}")
        report.verified = verify_member(
            member, retry, fetch=verify_fetch, sleep=sleep, progress=say,
            pod_headroom=fed.redirector.pod_headroom,
            prime_versions_url=prime_versions_url(fed, member),
        )
    return report


def _cluster_stages(
    fed: Federation,
    member: Member,
    runner: Runner,
    helm: Helm,
    tools: ClusterTools,
    rendered: list[RenderedRelease],
    chosen: tuple[str, ...],
    timeout: str,
    report: DeployReport,
    say: Progress,
) -> None:
    from ..actions.kube_auth import cluster_access, probe_cluster
    from ..actions.kubectl import rollout_status

    say(f"stage auth: credentials for {member.name} ({member.cloud})")
    try:
        with cluster_access(fed, member, runner, tools) as access:
            report.server_version = probe_cluster(runner, access)
            _note_version_skew(member, report.server_version, say)
            helm.use_cluster(access)
            if "releases" in chosen:
                _release_stage(helm, rendered, timeout, report, say)
            if "rollout" in chosen:
                namespaces = list(dict.fromkeys(r.release.namespace for r in rendered))
                say(f"stage rollout: namespaces {', '.join(namespaces)}")
                report.workloads = rollout_status(runner, access, namespaces, timeout=timeout,
                                                  progress=say)
    except ToolError as exc:
        # only the credential tools (gcloud, aws) fail outside a named stage
        raise _auth_error(exc, member) from None
    finally:
        helm.use_cluster(None)


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
    say: Progress,
) -> None:
    # every chart first: a chart that cannot be fetched stops the deploy before any release
    # has changed, instead of half-way through
    charts = []
    for item in rendered:
        say(f"stage releases: fetch {describe_chart(item.release)}")
        try:
            charts.append(helm.fetch_chart(item.release))
        except ToolError as exc:
            raise _stage_error(exc, "releases", exc.summary or "",
                               "nothing was deployed") from None
    for index, (item, chart) in enumerate(zip(rendered, charts, strict=True)):
        release = item.release
        say(f"stage releases: helm upgrade {release.name} ({describe_chart(release)}) "
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
    from ..actions.kube_auth import is_unreachable

    hint = exc.hint
    if is_unreachable(exc.stderr):
        hint = "the cluster stopped answering: check the network path and credentials, then " \
               "deploy again (helm upgrade is idempotent)"
    return exc.with_context(f"{what} ({after})", hint=hint, stage=stage)


def upgrade_redirector_release(
    fed: Federation,
    runner: Runner,
    *,
    timeout: str = DEFAULT_TIMEOUT,
    helm_executable: str | None = None,
    tools: ClusterTools | None = None,
    progress: Progress | None = None,
) -> DeployReport:
    """A deploy of only the redirector release on its member, with the deploy's stages and
    checks (auth, releases, rollout; no verify: the ramp watches the redirector)."""
    return deploy_member(
        fed, require_deployable(fed, fed.redirector.member), runner,
        releases=[fed.redirector.release], stages=("auth", "releases", "rollout"),
        timeout=timeout, helm_executable=helm_executable, tools=tools, progress=progress,
    )


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
    from ..actions.helm import Helm, secret_strings
    from ..actions.kube_auth import cluster_access, find_cluster_tools, probe_cluster

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
) -> int:
    """Deploy member (all stages, or the chosen ones); errors propagate to the CLI layer."""
    report = deploy_member(
        fed, member, runner, releases=list(releases) or None, stages=list(stages) or None,
        timeout=timeout, retry=retry, progress=progress,
    )
    for line in deploy_summary(report):
        progress(line)
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
) -> int:
    """Template and validate every release without a cluster: manifests to out, a summary to
    progress; 1 when a chart could not be fetched or rendered or a manifest is invalid."""
    report = dry_run_member(fed, member, runner, releases=list(releases) or None,
                            progress=progress)
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
