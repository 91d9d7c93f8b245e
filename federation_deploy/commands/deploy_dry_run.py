"""The dry run of a deploy: every release templated with helm (no cluster) and validated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from federation_deploy.config import Federation, Member, Release
from federation_deploy.errors import ToolError
from federation_deploy.progress import Progress, quiet
from federation_deploy.runner import Runner
from federation_deploy.values.manifests import (
    displayable_manifests,
    parse_manifests,
    schema_version_for,
    validate_manifests,
)
from federation_deploy.values.render import (
    describe_chart,
    missing_terraform_outputs,
    render_releases,
    secrets_note,
)

if TYPE_CHECKING:
    from federation_deploy.values.manifests import ValidationReport


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
    # helm's own error was streamed to stderr as it came: the summary does not repeat it
    shown: bool = False

    def describe(self) -> str:
        what = "could not be fetched" if self.fetch else "did not render"
        reason = "helm's error above" if self.shown else self.reason
        return f"chart {describe_chart(self.release)} {what}: {reason}"


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
    without_secrets: bool = False,
    update_dependencies: bool = False,
) -> DryRunReport:
    """Render every release (or the named ones) with `helm template` and validate the objects
    against the member's Kubernetes version. Needs no cluster. A chart directory gets its
    dependencies built first (into a private helm cache). A release whose chart cannot be
    fetched or rendered is reported in `failed` and the others still go on."""
    from federation_deploy.actions.helm import Helm, first_line, is_fetch_failure, secret_strings

    say = progress or quiet
    rendered = render_releases(fed, member, releases, without_secrets=without_secrets)
    note = secrets_note(rendered)
    if note:
        say(note)
    if missing := missing_terraform_outputs(fed, member, releases):
        say(f"warning: {missing} (a deploy would refuse)")
    if member.hooks:
        say(f"hooks not run in a dry run: {', '.join(h.name for h in member.hooks)}")
    secrets = secret_strings(rendered)
    helm = Helm(runner, executable=helm_executable, secrets=secrets)
    schema_version, note = schema_version_for(member.kubernetes_version)
    report = DryRunReport(member.name, member.kubernetes_version, schema_version, note,
                          helm.version)
    try:
        for item in rendered:
            release = item.release
            say(f"template: {release.name} ({describe_chart(release)})")
            if release.crds:
                say(f"crds of {release.name}: {release.crds} (applied by deploy, not in a dry run)")
            try:
                if helm.build_dependencies(release, update=update_dependencies, progress=say):
                    say(f"dependencies of {release.chart} built")
                raw = helm.template(item, kube_version=member.kubernetes_version)
            except ToolError as exc:
                report.failed.append(ReleaseFailure(
                    release, is_fetch_failure(release, exc.stderr), first_line(exc.stderr), exc,
                    shown=runner.stream))
                continue
            docs = parse_manifests(raw)
            live = f", helm release {release.helm_name}" if release.helm_release else ""
            header = (f"# federation-deploy dry-run: member {member.name}, release {release.name} "
                      f"({describe_chart(release)}){live}, namespace {release.namespace}\n")
            report.templated.append(TemplatedRelease(
                release, header + displayable_manifests(raw, secrets), len(docs),
                validate_manifests(docs, schema_version, release.namespace, secrets),
            ))
    finally:
        helm.close()  # the private chart copies
    return report


