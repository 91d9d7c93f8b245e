"""Command `diff`: what a deploy of a member would change, changing nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from federation_deploy.commands.deploy import auth_error, stage_error
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation, Member, Release
from federation_deploy.errors import EXIT_CHANGES, ToolError
from federation_deploy.progress import Progress, quiet
from federation_deploy.runner import Runner
from federation_deploy.values.manifests import manifest_diff
from federation_deploy.values.render import describe_chart, render_releases, require_deployable

if TYPE_CHECKING:
    from federation_deploy.actions.kube_auth import ClusterTools


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

    say = progress or quiet
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
                    # the deployed values at the key paths the secret layers set: a rotated
                    # secret's old live value is hidden as well as the new one
                    live = item.secret_strings_in(helm.deployed_values(release))
                    helm.command.secrets.update(live)
                    if plugin:
                        text = helm.diff_upgrade(item)
                    else:
                        new = helm.template(item, kube_version=member.kubernetes_version,
                                            is_upgrade=True, include_crds=False)
                        old = helm.get_manifest(release) or ""
                        text = manifest_diff(old, new, release.namespace, secrets, live)
                except ToolError as exc:
                    raise stage_error(exc, "diff", f"cannot compare release {release.name!r} "
                                       f"({describe_chart(release)})",
                                       "nothing was changed") from None
                say(f"diff: {release.name}: {'changes' if text.strip() else 'no change'}")
                report.releases.append(ReleaseDiff(release, text))
    except ToolError as exc:
        raise auth_error(exc, member) from None
    finally:
        helm.use_cluster(None)
        helm.close()
    return report


def diff(
    fed: Federation,
    member: str,
    *,
    runner: Runner,
    progress: Progress,
    releases: Sequence[str] = (),
) -> CommandResult:
    """What a deploy would change: diffs on stdout; exit 0 no change, 3 changes (errors
    raise: 1)."""
    report = diff_member(fed, require_deployable(fed, member), runner,
                         releases=list(releases) or None, progress=progress)
    changed = [r for r in report.releases if r.changed]
    out = []
    for item in changed:
        text = item.text if item.text.endswith("\n") else item.text + "\n"
        out.append(f"# release {item.release.name} (namespace {item.release.namespace})\n{text}")
    if changed:
        return CommandResult(
            stdout="".join(out), exit_code=EXIT_CHANGES,
            messages=(f"diff of {report.member} ({report.method}): {len(changed)} of "
                      f"{len(report.releases)} release(s) would change: "
                      f"{', '.join(r.release.name for r in changed)}",))
    return CommandResult(messages=(f"diff of {report.member} ({report.method}): no change",))
