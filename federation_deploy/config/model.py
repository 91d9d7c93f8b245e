"""The validated federation as frozen dataclasses; built by the loader, never from raw dicts."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from federation_deploy.errors import UsageError
from federation_deploy.redirector.config import DEFAULT_PRIME_FALLBACK_AFTER

PACKAGE_CHART_PREFIX = "package:"
# Charts shipped with the package (federation_deploy/charts), for `package:NAME` releases.
CHARTS_DIR = Path(__file__).parent.parent / "charts"


@dataclass(frozen=True)
class Location:
    """Where a piece of config came from, for error messages and --explain."""

    file: str
    line: int | None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ChartPin:
    """One row of the top-level `charts:` table: a chart pinned once for every member."""

    name: str  # the table's key, which releases name in `chart:`
    chart: str  # the chart's name in its repository, oci://..., or package:NAME
    version: str
    repo: str | None = None
    changelog: str | None = None
    location: Location = Location("", None)
    version_location: Location = Location("", None)

    @property
    def package_chart(self) -> Path | None:
        if self.chart.startswith(PACKAGE_CHART_PREFIX):
            return CHARTS_DIR / self.chart[len(PACKAGE_CHART_PREFIX) :]
        return None


@dataclass(frozen=True)
class ValuesFile:
    """One entry of a `values:` list: a path or glob relative to the config directory, with
    {member}/{namespace} placeholders."""

    pattern: str
    secret: bool = False
    optional: bool = False
    location: Location = Location("", None)


# What a hook's argv may name in braces (deploy_hooks.hook_argv fills them); any other
# `{name}` is a config error (it reached the command line as it was). A shell's `${name}`,
# a template's `{{name}}` and `{.jsonpath}` are not placeholders.
HOOK_PLACEHOLDERS = ("member", "namespace", "release", "config_dir", "kubeconfig")
HOOK_PLACEHOLDER = re.compile(r"(?<![${])\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


def unknown_hook_placeholders(part: str) -> list[str]:
    return [name for name in HOOK_PLACEHOLDER.findall(part) if name not in HOOK_PLACEHOLDERS]


@dataclass(frozen=True)
class Hook:
    """A member step that is not a Helm release: argv run after a deploy stage."""

    name: str
    after: str
    argv: tuple[str, ...]
    location: Location = Location("", None)
    attempts: int = 1  # runs before the hook fails the deploy
    timeout: float | None = None  # seconds per run

    def filled_argv(self, values: Mapping[str, str]) -> list[str]:
        """The argv with its {placeholders} replaced by values (in one pass: a value that
        holds braces is not filled again; the loader refuses unknown placeholders)."""
        return [HOOK_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), part)
                for part in self.argv]

    def uses(self, placeholder: str) -> bool:
        return any(placeholder in HOOK_PLACEHOLDER.findall(part) for part in self.argv)


@dataclass(frozen=True)
class Release:
    """A member's release, its chart resolved: chart, repo and version are what helm gets,
    whether pinned on the release itself or taken from the `charts:` table (`pin`)."""

    name: str
    chart: str
    version: str
    namespace: str
    repo: str | None = None
    location: Location = Location("", None)
    pin: str | None = None  # the `charts:` entry this release refers to
    overrides_pin: bool = False  # it pins its own `version:` over the table's (staging first)
    helm_release: str | None = None  # the live helm release name, when not `name`
    crds: str | None = None  # URL, or a path relative to the config directory
    # whole values files for this release (None: the layered values files)
    values: tuple[ValuesFile, ...] | None = None
    local_chart: Path | None = None  # resolved directory of a `chart: ./DIR` release

    @property
    def package_chart(self) -> Path | None:
        """The chart directory shipped with this package, for `package:NAME` charts."""
        if self.chart.startswith(PACKAGE_CHART_PREFIX):
            return CHARTS_DIR / self.chart[len(PACKAGE_CHART_PREFIX) :]
        return None

    @property
    def helm_name(self) -> str:
        """The name helm knows the release by."""
        return self.helm_release or self.name

    @property
    def chart_dir(self) -> Path | None:
        """A chart on disk: shipped with the package, or a local directory."""
        return self.package_chart or self.local_chart


@dataclass(frozen=True)
class Cluster:
    """Cluster coordinates; which fields are set depends on the member's cloud."""

    name: str | None = None
    project: str | None = None  # gcp
    location: str | None = None  # gcp zone or region
    key_file: str | None = None  # gcp, optional service account key (config dir relative)
    region: str | None = None  # aws
    role_arn: str | None = None  # aws, optional role to assume
    kubeconfig: str | None = None  # kubeconfig: file under config/secrets/
    context: str | None = None  # kubeconfig: context to use


@dataclass(frozen=True)
class TerraformStack:
    path: str  # relative to the terraform root, e.g. aws/curvenote
    directory: Path
    # terraform output name -> "<release>.<key.path>" in the member's values
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RampState:
    """A ramp in progress, kept in federation.yaml so it resumes and every step is a diff."""

    steps: tuple[float, ...]
    step: int  # index of the step currently published; -1 = not started
    to_weight: float
    hold: str
    started: str | None = None
    last_healthy: str | None = None
    # set by a rollback: when, from which step and why; the ramp is paused until a person
    # runs `ramp MEMBER` again (the scheduled --advance leaves it alone)
    rolled_back: str | None = None
    # set when the evidence stayed inconclusive up to the maximum hold: paused at its step
    inconclusive: str | None = None
    # the evidence gate's last verdict at the current step (evidence.Verdict.as_record)
    evidence: Mapping[str, Any] | None = None
    owner: str | None = None  # "rollout": ring 1 of a rollout; `ramp` leaves it alone

    @property
    def paused(self) -> bool:
        return self.rolled_back is not None or self.inconclusive is not None

    @property
    def current_share(self) -> float:
        return 0.0 if self.step < 0 else self.steps[self.step]


@dataclass(frozen=True)
class DrainState:
    """A member taken out of rotation by `traffic drain`: why, since when, and the weight
    `traffic restore` gives back."""

    reason: str
    since: str
    previous_weight: float


@dataclass(frozen=True)
class RingPlan:
    """federation.yaml's `rings:` block: how a new chart version goes through the federation
    (ring 0 staging, ring 1 one member on shares of launches, ring 2 the rest in CD order)."""

    staging: tuple[str, ...]
    canary: str  # a member name, or "smallest" (chosen when the ring starts)
    shares: tuple[float, ...]
    hold: str
    versions_key: str | None = None  # None: the chart's name
    location: Location = Location("", None)


@dataclass(frozen=True)
class RolloutState:
    """A rollout in progress (top-level `rollout:`), kept in federation.yaml so it resumes and
    every step is a diff: members in `upgraded` run `to`, the others `from`."""

    chart: str
    from_version: str
    to_version: str
    ring: int  # -1 = recorded, not started; 0, 1, 2 = the ring running
    upgraded: tuple[str, ...] = ()
    canary: str | None = None
    canary_weight: float | None = None
    started: str | None = None
    rolled_back: str | None = None  # set by a failed ring: paused until --resume or --abort
    versions_key: str = ""  # the /versions key of the chart (rings.versions_key or its name)
    upgrading: str | None = None  # the member being deployed now (before `upgraded`)
    ring1_passed_at: str | None = None  # ring 1's last share held and judged: it is over
    # routed members not deployed by this tool -> the version of the chart they reported
    external: Mapping[str, str] | None = None

    @property
    def accepted_versions(self) -> dict[str, list[str]] | None:
        """What the redirector accepts while ring 1 and 2 run: both versions under the
        chart's /versions key; None otherwise (the members must equal the prime's)."""
        if self.ring < 1 or self.rolled_back is not None:
            return None
        return {self.versions_key: [self.from_version, self.to_version]}

    @property
    def waiting_for(self) -> dict[str, str]:
        """The members in `external` that still report `from` (name -> version): the end of
        the rollout keeps the accepted set for them until they report `to`. One on a third
        version is out of rotation either way (the redirector drops it) and is not waited
        for."""
        return {n: v for n, v in (self.external or {}).items() if v == self.from_version}


@dataclass(frozen=True)
class Member:
    name: str
    url: str
    cloud: str
    weight: float
    prime: bool
    routed: bool
    health_url: str
    versions_url: str
    cluster: Cluster
    kubernetes_version: str | None
    terraform: TerraformStack | None
    releases: tuple[Release, ...]
    target_weight: float | None = None
    ramp: RampState | None = None
    drained: DrainState | None = None
    location: Location = Location("", None)
    # values files keyed by release name (None: values/ and secrets/values/)
    values: tuple[ValuesFile, ...] | None = None
    hooks: tuple[Hook, ...] = ()
    redirector_host: str | None = None  # `redirector_host`; None: the member's name

    @property
    def host_name(self) -> str:
        """The member's name in the redirector: its hosts key, /active_hosts, metrics."""
        return self.redirector_host or self.name

    @property
    def deployable(self) -> bool:
        return self.cloud != "external"

    def hook_placeholders(self) -> dict[str, str]:
        """{member}, and {namespace} and {release} of the member's last release (the one
        deploy.py deployed last), for its hooks' argv."""
        main = self.releases[-1] if self.releases else None
        return {
            "member": self.name,
            "namespace": main.namespace if main else self.name,
            "release": main.helm_name if main else self.name,
        }

    def release(self, name: str) -> Release:
        for release in self.releases:
            if release.name == name:
                return release
        known = ", ".join(r.name for r in self.releases) or "none"
        raise UsageError(f"member {self.name!r} has no release {name!r} (releases: {known})")


# The two settings classes carry no defaults on purpose: the defaults live in the schema table
# (config/schema.py, which takes the redirector's own), and only the loader builds these.
@dataclass(frozen=True)
class CheckSettings:
    period: float
    jitter: float
    retries: int
    timeout: float
    failed_period: float


@dataclass(frozen=True)
class RedirectorSettings:
    host: str
    member: str
    release: str
    load_balancer: str
    check: CheckSettings
    pod_headroom: int
    host_cookie_age_hours: float
    ramp_policy: str
    ramp_probe: str | None = None  # launched on a ramping member during holds (probes)
    ramp_preflight: int | None = None  # pool repositories a ramp's pre-flight launches
    prometheus_url: str | None = None  # the federation's Prometheus: a ramp's evidence
    # seconds the prime may be unhealthy before the redirector takes another member as its
    # versions reference and last resort (redirector/reference.py)
    prime_fallback_after: float = DEFAULT_PRIME_FALLBACK_AFTER


@dataclass(frozen=True)
class SandboxSettings:
    """federation.yaml's `sandbox:` block: this federation is a local sandbox (`sandbox up`)."""

    redirector_config: Path  # the config.json its redirector serves (resolved)
    redirector_url: str | None
    aws_endpoint: str | None  # its moto_server, for terraform
    location: Location = Location("", None)


@dataclass(frozen=True)
class FreezeState:
    """federation.yaml's `freeze:` block: no deploy, ramp or weight set until `until` (UTC);
    drains and restores still run. Whether it is in force is config.freeze.active_freeze's
    to say (it needs the time)."""

    reason: str
    who: str
    until: datetime
    since: str | None = None
    location: Location = Location("", None)


@dataclass(frozen=True)
class NotificationSettings:
    """federation.yaml's `notifications:` block: the webhook (its URL in the environment
    variable webhook_env, never in config), its format, extra Grafana tags, and the total
    seconds each HTTP call may take."""

    webhook_env: str | None
    format: str
    tags: tuple[str, ...]
    timeout: float


@dataclass(frozen=True)
class Federation:
    config_dir: Path
    path: Path
    terraform_version: str
    terraform_root: Path
    redirector: RedirectorSettings
    members: Mapping[str, Member]
    warnings: tuple[str, ...] = ()
    charts: Mapping[str, ChartPin] = field(default_factory=dict)
    secrets_stand_in: Path | None = None  # replaces the secret layers (--without-secrets)
    ci_order: tuple[str, ...] = ()  # the CD order of ci-matrix
    # `ci.staging`; None: the default rule (config/ci_matrix.py)
    ci_staging: tuple[str, ...] | None = None
    ci_manual: tuple[str, ...] = ()  # `ci.manual`: members CD does not deploy
    # files still encrypted by git-crypt: never parsed; needed ones stop a command (exit 2)
    locked_files: frozenset[Path] = frozenset()
    # the weights' generation (top-level `generation:`): one more at every weight change
    generation: int = 0
    # values files parsed once at load (validation reads them all anyway); render reuses them
    values_documents: Mapping[Path, Any] = field(default_factory=dict, compare=False, repr=False)
    # a local sandbox (`sandbox up`): it never reaches a real cluster or cloud
    sandbox: SandboxSettings | None = None
    # `rings:` (how a chart version goes through the federation) and a `rollout:` running
    rings: RingPlan | None = None
    rollout: RolloutState | None = None
    freeze: FreezeState | None = None  # `freeze:` (in force or expired: config.freeze says)
    notifications: NotificationSettings | None = None
    # what is wrong with a hand-edited `freeze:` block (errors.Problem, file:line:key): no
    # load error, so that drain, restore and unfreeze (which removes it) still run; every
    # command a freeze refuses, and validate, refuse it (exit 2)
    freeze_problems: tuple[Any, ...] = ()

    def refuse_in_sandbox(self, action: str) -> None:
        """UsageError when this federation is a sandbox: action (a cloud credential step, a
        helm upgrade on a cluster) would leave this machine for a real cluster or cloud."""
        if self.sandbox is None:
            return
        raise UsageError(
            f"refused in a sandbox: {action}. {self.sandbox.location}: `sandbox:` says "
            f"{self.config_dir} is a local sandbox (written by `federation-deploy sandbox "
            "up`), whose members are stand-ins on 127.0.0.1 and whose redirector reads "
            f"{self.sandbox.redirector_config}; a sandbox never reaches a real cluster or "
            "cloud. Use the repository's config directory (and real credentials) for that")

    def member(self, name: str) -> Member:
        try:
            return self.members[name]
        except KeyError:
            known = ", ".join(self.members)
            close = difflib.get_close_matches(name, list(self.members), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"unknown member {name!r} (members: {known}){hint}") from None

    @property
    def routed(self) -> list[Member]:
        return [m for m in self.members.values() if m.routed]

    def member_of_host(self, host: str) -> str:
        """The member whose redirector host name is host (host itself when none is)."""
        return self._member_of_host.get(host, host)

    @functools.cached_property
    def _member_of_host(self) -> dict[str, str]:
        """{host name: member}, the first member of a name: by_member maps every host of a
        redirector's answer, a scan of the members each would be quadratic."""
        found: dict[str, str] = {}
        for m in self.members.values():
            found.setdefault(m.host_name, m.name)
        return found

    def by_member(self, hosts: Mapping[str, Any]) -> dict[str, Any]:
        """A mapping keyed by redirector host names (/active_hosts, a config's hosts) keyed
        by member names."""
        return {self.member_of_host(str(host)): value for host, value in hosts.items()}

    def values_file(self, member: str | None, secret: bool = False) -> Path:
        base = self._values_dirs[secret]
        return base / f"{member or 'common'}.yaml"

    @functools.cached_property
    def _values_dirs(self) -> tuple[Path, Path]:
        """values/ and secrets/values/, built once: render looks up four files per release."""
        return self.config_dir / "values", self.config_dir / "secrets" / "values"

    def generated_outputs_file(self, member: str) -> Path:
        return self.config_dir / "generated" / f"{member}.terraform.json"

    def chart(self, name: str) -> ChartPin:
        try:
            return self.charts[name]
        except KeyError:
            known = ", ".join(self.charts) or "none"
            close = difflib.get_close_matches(name, list(self.charts), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"unknown chart {name!r} (charts: {known}){hint}") from None

    def releases_of_chart(self, name: str) -> list[tuple[Member, Release]]:
        """Every member's release that refers to the `charts:` entry name."""
        return [(m, r) for m in self.members.values() for r in m.releases if r.pin == name]

    def secrets_path(self, relative: str) -> Path:
        """A file under secrets/; never one outside it (the loader refuses such paths first)."""
        from federation_deploy.config.problems import confined

        base = self.config_dir / "secrets"
        if not confined(base, relative):
            raise UsageError(f"{relative!r} is outside {self.config_dir / 'secrets'}")
        return (base / relative).resolve()
