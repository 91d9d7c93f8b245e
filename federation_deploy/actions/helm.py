"""The helm adapter (the only module importing pyhelm3): deploy, dry-run and diff a member."""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyhelm3
import semver
import yaml

from ..config import Federation, Member, Release
from ..errors import FederationDeployError, MissingToolError, ToolError, UsageError
from ..render import REDACTED, RenderedRelease, render_member
from ..runner import Runner, censor
from ..verify import Fetch, Retry, VerifyResult, http_get, rollout_status, verify_member
from ..yamlio import dump_plain
from .kube_auth import (
    ClusterAccess,
    ClusterTools,
    Which,
    cluster_access,
    find_cluster_tools,
    is_unreachable,
    probe_cluster,
    refuse_external,
)

T = TypeVar("T")
Progress = Callable[[str], None]

HELM_ENV = "FEDERATION_DEPLOY_HELM"
# Where scripts/fetch_helm.py puts helm in a source checkout (the last place we look).
CHECKOUT_HELM = Path(__file__).resolve().parents[2] / "bin" / "helm"
HELM_FIX = (
    "install helm 3 (https://helm.sh/docs/intro/install/), or run `python scripts/fetch_helm.py` "
    f"in a checkout (it puts helm 3.17.2 in bin/), or set {HELM_ENV}=/path/to/helm"
)
DEFAULT_TIMEOUT = "10m"
STAGES = ("auth", "releases", "rollout", "verify")
CLUSTER_STAGES = frozenset({"auth", "releases", "rollout"})
# helm subcommands that change nothing: they still run when the Runner is in dry-run mode
READ_ONLY_HELM = frozenset({
    "template", "show", "version", "get", "list", "status", "history", "diff", "plugin",
    "lint", "search", "pull", "env",
})


def _noop(_message: str) -> None:
    pass


# --------------------------------------------------------------------------------------------
# Finding helm


def find_helm(environ: Mapping[str, str] | None = None, which: Which = shutil.which) -> str:
    """The helm to run: $FEDERATION_DEPLOY_HELM, else `helm` on PATH, else the checkout's
    bin/helm (from scripts/fetch_helm.py). MissingToolError with the fix otherwise."""
    environ = os.environ if environ is None else environ
    configured = environ.get(HELM_ENV, "")
    if configured:
        path = Path(configured).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        found = which(configured)
        if found:
            return found
        raise MissingToolError(
            f"{HELM_ENV}={configured} is not an executable: point it at a helm 3 binary, "
            "or unset it to use helm from PATH"
        )
    found = which("helm")
    if found:
        return found
    if CHECKOUT_HELM.is_file() and os.access(CHECKOUT_HELM, os.X_OK):
        return str(CHECKOUT_HELM)
    raise MissingToolError(f"helm not found (looked at ${HELM_ENV}, PATH, bin/helm): {HELM_FIX}")


def parse_helm_version(executable: str, text: str) -> semver.Version:
    """`v3.17.2+gcc0bbbd` -> 3.17.2; MissingToolError unless it is helm 3.x."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    try:
        version = semver.Version.parse(first.removeprefix("v"))
    except ValueError:
        raise MissingToolError(
            f"{executable} is not a helm we understand (`helm version --short` said "
            f"{first!r}): {HELM_FIX}"
        ) from None
    if version.major != 3:
        raise MissingToolError(
            f"{executable} is helm {first}, federation-deploy needs helm 3.x: {HELM_FIX}"
        )
    return version


# --------------------------------------------------------------------------------------------
# The seam: pyhelm3's Command with its subprocess call sent through our Runner


class DryRunSkipped(Exception):
    """A mutating helm command was echoed, not run, because the Runner is in dry-run mode."""


class RunnerCommand(pyhelm3.Command):
    """pyhelm3's Command whose one subprocess call, `run`, goes through our Runner.

    The Runner echoes the (censored) argv to stderr, honours dry-run and runs it; values travel
    as JSON on stdin (pyhelm3's `--values -`), so no values file is ever written. A failure
    becomes ToolError carrying helm's own stderr, censored with this command's secrets. Tests
    hand in a recording Runner and see the exact argv.

    Output is censored here, not by the Runner: a censored `***` inside YAML is an alias and
    would break pyhelm3's parsing of helm's answers, so the Runner is given no secrets.
    """

    def __init__(
        self, runner: Runner, *, executable: str = "helm", default_timeout: str = DEFAULT_TIMEOUT
    ) -> None:
        super().__init__(default_timeout=default_timeout, executable=executable)
        self.runner = runner
        self.executable = executable
        self.access: ClusterAccess | None = None
        self.secrets: set[str] = set()

    def argv(self, command: Iterable[Any]) -> list[str]:
        argv = [self.executable, *(str(part) for part in command)]
        if self.access is not None:
            argv += ["--kubeconfig", str(self.access.kubeconfig)]
            if self.access.context:
                argv += ["--kube-context", self.access.context]
        return argv

    def run_sync(self, command: Sequence[Any], input: bytes | None = None) -> bytes:
        argv = self.argv(command)
        mutating = str(command[0]) not in READ_ONLY_HELM if command else True
        env = None
        if self.access is not None:
            # plugins (helm-diff) and exec credential plugins read KUBECONFIG, not the flag
            env = {"KUBECONFIG": str(self.access.kubeconfig)}
        proc = self.runner.run(
            argv, input=None if input is None else input.decode("utf-8"), env=env,
            mutating=mutating, check=False,
        )
        if self.runner.dry_run and mutating:
            raise DryRunSkipped(" ".join(argv))
        if proc.returncode != 0:
            raise ToolError(
                [censor(a, self.secrets) for a in argv], proc.returncode,
                censor(proc.stdout or "", self.secrets), censor(proc.stderr or "", self.secrets),
            )
        return (proc.stdout or "").encode("utf-8")

    async def run(self, command: list[Any], input: bytes | None = None) -> bytes:
        return self.run_sync(command, input)

    def client_version(self) -> semver.Version:
        """`helm version --short` (pyhelm3 runs its own shell here; we use the seam)."""
        try:
            proc = self.runner.run([self.executable, "version", "--short"], mutating=False)
        except ToolError as exc:
            reason = (exc.stderr or exc.stdout or exc.summary or "").strip().splitlines()
            raise MissingToolError(
                f"{self.executable} does not run (`helm version --short`: "
                f"{reason[0] if reason else f'exit {exc.returncode}'}): {HELM_FIX}"
            ) from None
        return parse_helm_version(self.executable, proc.stdout or "")

    async def template_manifests(
        self,
        release_name: str,
        chart_ref: str,
        values: Mapping[str, Any],
        *,
        namespace: str,
        repo: str | None = None,
        version: str | None = None,
        kube_version: str | None = None,
        is_upgrade: bool = False,
        include_crds: bool = True,
    ) -> str:
        """The raw text of `helm template` (pyhelm3's template() returns parsed objects and
        cannot pass --kube-version, which charts with kubeVersion constraints need)."""
        command = [
            "template", release_name, chart_ref, "--namespace", namespace,
            "--include-crds" if include_crds else "--skip-crds", "--values", "-",
        ]
        if kube_version:
            command += ["--kube-version", kube_version]
        if is_upgrade:
            command.append("--is-upgrade")
        if repo:
            command += ["--repo", repo]
        if version:
            command += ["--version", version]
        return (await self.run(command, json.dumps(values).encode("utf-8"))).decode("utf-8")


class _Client(pyhelm3.Client):
    def check_executable_exists(self, executable: str) -> None:
        """find_helm already looked, and a recording Runner needs no binary at all."""


def _complete(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@dataclass(frozen=True)
class DeployedRelease:
    name: str
    namespace: str
    chart: str
    version: str
    revision: int | None
    status: str


class Helm:
    """Synchronous face of pyhelm3 for one run: the binary checked (3.x), then charts fetched,
    releases upgraded, templated and diffed through the Runner seam."""

    def __init__(
        self,
        runner: Runner,
        *,
        executable: str | None = None,
        timeout: str = DEFAULT_TIMEOUT,
        secrets: Iterable[str] = (),
    ) -> None:
        self.runner = runner
        self.executable = executable or find_helm()
        self.command = RunnerCommand(runner, executable=self.executable, default_timeout=timeout)
        self.command.secrets.update(secrets)
        self.client = _Client(command=self.command)  # runs `helm version --short`: 3.x or error
        self.version = str(self.client.version)

    def use_cluster(self, access: ClusterAccess | None) -> None:
        """Bind every later helm command to this run's kubeconfig (never the user's default)."""
        self.command.access = access

    def censor(self, text: str) -> str:
        return censor(text, self.command.secrets)

    def fetch_chart(self, release: Release) -> Any:
        """pyhelm3's Chart for release (`helm show chart`; remote charts are downloaded):
        ToolError naming the chart and helm's reason when it cannot be fetched."""
        if release.package_chart is not None:
            ref: Any = release.package_chart
            repo, version = None, None
        else:
            ref, repo, version = release.chart, release.repo, release.version
        try:
            return _complete(self.client.get_chart(ref, repo=repo, version=version))
        except ToolError as exc:
            raise ToolError(
                exc.argv, exc.returncode, exc.stdout, exc.stderr,
                summary=f"cannot fetch chart {describe_chart(release)} for release "
                        f"{release.name!r}: {first_line(exc.stderr)}",
                hint="check the network and the chart's repo and version in federation.yaml",
            ) from None
        except ValueError as exc:  # pydantic: the chart's metadata is not what helm promises
            raise FederationDeployError(
                f"chart {describe_chart(release)} for release {release.name!r} has metadata "
                f"pyhelm3 cannot read: {first_line(str(exc))}"
            ) from None

    def upgrade(self, rendered: RenderedRelease, chart: Any, *, timeout: str) -> DeployedRelease:
        """`helm upgrade --install --atomic --wait --create-namespace` of one release."""
        release = rendered.release
        try:
            revision = _complete(self.client.install_or_upgrade_release(
                release.name, chart, rendered.values,
                atomic=True, wait=True, timeout=timeout, namespace=release.namespace,
                create_namespace=True,
            ))
        except DryRunSkipped:
            return DeployedRelease(release.name, release.namespace, release.chart,
                                   release.version, None, "dry-run")
        return DeployedRelease(
            release.name, release.namespace, release.chart, release.version,
            int(revision.revision), str(getattr(revision.status, "value", revision.status)),
        )

    def template(
        self,
        rendered: RenderedRelease,
        *,
        kube_version: str | None,
        is_upgrade: bool = False,
        include_crds: bool = True,
    ) -> str:
        """The manifests of one release, uncensored (callers censor what they show)."""
        release = rendered.release
        if release.package_chart is not None:
            ref, repo, version = str(release.package_chart), None, None
        else:
            ref, repo, version = release.chart, release.repo, release.version
        return _complete(self.command.template_manifests(
            release.name, ref, rendered.values, namespace=release.namespace, repo=repo,
            version=version, kube_version=kube_version, is_upgrade=is_upgrade,
            include_crds=include_crds,
        ))

    def get_manifest(self, release: Release) -> str | None:
        """What is deployed (`helm get manifest`), or None when the release is not installed."""
        try:
            out = _complete(self.command.run(
                ["get", "manifest", release.name, "--namespace", release.namespace]))
        except ToolError as exc:
            if "release: not found" in exc.stderr.lower():
                return None
            raise
        return out.decode("utf-8")

    def has_diff_plugin(self) -> bool:
        out = _complete(self.command.run(["plugin", "list"])).decode("utf-8")
        return any(line.split()[:1] == ["diff"] for line in out.splitlines())

    def diff_upgrade(self, rendered: RenderedRelease) -> str:
        """helm-diff's view of an upgrade (Secret contents masked by helm-diff; censored)."""
        release = rendered.release
        ref: Any = release.package_chart if release.package_chart is not None else release.chart
        out = _complete(self.command.diff_upgrade(
            release.name, ref, rendered.values, namespace=release.namespace,
            repo=release.repo, version=None if release.package_chart else release.version,
            show_secrets=False, context_lines=3,
        ))
        return self.censor(str(out))

    def lint(self, chart_dir: Path, values: Mapping[str, Any], *,
             kube_version: str | None = None) -> str:
        """`helm lint --strict` of a local chart with values (on stdin)."""
        command = ["lint", str(chart_dir), "--strict", "--values", "-"]
        if kube_version:
            command += ["--kube-version", kube_version]
        return _complete(self.command.run(command, json.dumps(values).encode("utf-8"))).decode()


def describe_chart(release: Release) -> str:
    if release.package_chart is not None:
        return f"{release.chart} {release.version}"
    if release.repo:
        return f"{release.chart} {release.version} from {release.repo}"
    return f"{release.chart} {release.version}"


def first_line(text: str) -> str:
    """helm's `Error: ...` line (warnings come before it), else the first line of text."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Error: "):
            return line.removeprefix("Error: ")
    return lines[0] if lines else "no output"


RENDER_FAILURE = re.compile(
    r"execution error|parse error|template: |error converting yaml|yaml: |unable to build "
    r"kubernetes objects|values don't meet the specifications|chart requires kubeversion",
    re.IGNORECASE,
)


def is_fetch_failure(release: Release, stderr: str) -> bool:
    """Did helm fail to get the chart (network, repo, version), rather than to render it?"""
    return release.package_chart is None and not RENDER_FAILURE.search(stderr)


# --------------------------------------------------------------------------------------------
# Manifests: parsing like Kubernetes does (YAML 1.1), validating, redacting, diffing


_ManifestBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ManifestLoader(_ManifestBase):
    """YAML 1.1 like Kubernetes (PyYAML, libyaml when present), with plain strings where YAML
    would build dates or the `=` value type: Kubernetes (Go, via JSON) keeps them strings, and
    pyhelm3's own loader does the same for `=`."""


def _construct_str(loader: Any, node: Any) -> str:
    return str(loader.construct_scalar(node))


_ManifestLoader.add_constructor("tag:yaml.org,2002:value", _construct_str)
_ManifestLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_str)


def parse_manifests(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document manifest (empty documents dropped)."""
    try:
        docs = list(yaml.load_all(text, Loader=_ManifestLoader))  # noqa: S506 - safe subclass
    except yaml.YAMLError as exc:
        raise FederationDeployError(f"helm produced invalid YAML: {first_line(str(exc))}") from None
    return [doc for doc in docs if isinstance(doc, dict) and doc]


def resource_name(doc: Mapping[str, Any], default_namespace: str | None = None) -> str:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    namespace = meta.get("namespace") or default_namespace
    name = meta.get("name", "?")
    kind = doc.get("kind", "?")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


@dataclass(frozen=True)
class ManifestProblem:
    resource: str
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.message}"


@dataclass
class ValidationReport:
    schema_version: str
    valid: int = 0
    invalid: list[ManifestProblem] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # custom kinds: no schema shipped


def _kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        raise MissingToolError(
            "kubernetes-validate is not installed: pip install 'kubernetes-validate==1.37.0'"
        ) from None
    return kubernetes_validate


def schema_version_for(kubernetes_version: str | None) -> tuple[str, str | None]:
    """The shipped Kubernetes schema version to validate against, and a note when it is not
    the member's own (kubernetes-validate ships its schemas: no network needed)."""
    kv = _kubernetes_validate()
    from kubernetes_validate.utils import all_versions

    minors = sorted({int(v.split(".")[1]) for v in all_versions()})
    newest = f"1.{minors[-1]}"
    package = f"kubernetes-validate {kv.__version__}"
    if kubernetes_version is None:
        return newest, (f"member has no kubernetes_version: validated against the newest "
                        f"schemas of {package} ({newest})")
    want = int(kubernetes_version.split(".")[1])
    if want in minors:
        return kubernetes_version, None
    nearest = min(minors, key=lambda m: (abs(m - want), -m))
    return f"1.{nearest}", (f"{package} has no schemas for Kubernetes {kubernetes_version}: "
                            f"validated against the nearest, 1.{nearest}")


def validate_manifests(
    docs: Iterable[Mapping[str, Any]], schema_version: str, default_namespace: str | None = None
) -> ValidationReport:
    """Validate each object (strict: unknown fields are errors) against the shipped schemas."""
    kv = _kubernetes_validate()
    report = ValidationReport(schema_version)
    for doc in docs:
        name = resource_name(doc, default_namespace)
        if not isinstance(doc.get("apiVersion"), str) or not isinstance(doc.get("kind"), str):
            report.invalid.append(ManifestProblem(name, "not a Kubernetes object "
                                                        "(apiVersion and kind are required)"))
            continue
        try:
            kv.validate(dict(doc), schema_version, strict=True)
        except kv.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path) or "(top level)"
            report.invalid.append(ManifestProblem(name, f"{path}: {exc.message}"))
        except (kv.SchemaNotFoundError, kv.InvalidSchemaError):
            report.unchecked.append(name)
        else:
            report.valid += 1
    return report


def _redact_secret(doc: dict[str, Any], digest: bool = False) -> dict[str, Any]:
    """A Secret with every data/stringData value replaced (by a short digest when asked, so a
    diff still shows that a value changed without showing it)."""
    out = dict(doc)
    for key in ("data", "stringData"):
        if isinstance(out.get(key), dict):
            out[key] = {k: (_digest(v) if digest else REDACTED) for k, v in out[key].items()}
    return out


def _digest(value: Any) -> str:
    return f"{REDACTED} sha256:{hashlib.sha256(str(value).encode()).hexdigest()[:12]}"


def displayable_manifests(text: str, secrets: Iterable[str]) -> str:
    """helm's output for people: each Secret's values redacted (keeping helm's `# Source:`
    lines) and every secret string of the values censored."""
    chunks = re.split(r"(?m)^---[ \t]*$\n?", text)
    shown: list[str] = []
    for chunk in chunks:
        if not chunk.strip():
            continue
        docs = parse_manifests(chunk)
        if docs and docs[0].get("kind") == "Secret":
            comments = "".join(line + "\n" for line in chunk.splitlines()
                               if line.startswith("#"))
            chunk = comments + dump_plain(_redact_secret(docs[0]))
        shown.append(chunk if chunk.endswith("\n") else chunk + "\n")
    return censor("".join("---\n" + c for c in shown), secrets)


def _sorted(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _sorted(data[k]) for k in sorted(data, key=str)}
    if isinstance(data, list):
        return [_sorted(v) for v in data]
    return data


def manifest_diff(deployed: str, rendered: str, namespace: str, secrets: Iterable[str] = ()
                  ) -> str:
    """A unified diff, object by object, of what is deployed against what would be: empty when
    they are the same. Secret values show as digests; secret strings are censored."""

    def index(text: str) -> dict[str, str]:
        objects: dict[str, str] = {}
        for doc in parse_manifests(text):
            if doc.get("kind") == "Secret":
                doc = _redact_secret(doc, digest=True)
            objects[resource_name(doc, namespace)] = dump_plain(_sorted(doc))
        return objects

    before, after = index(deployed), index(rendered)
    parts: list[str] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, ""), after.get(name, "")
        if old == new:
            continue
        parts += difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True),
            fromfile=f"deployed: {name}" if old else "deployed: (none)",
            tofile=f"rendered: {name}" if new else "rendered: (removed)",
        )
    return censor("".join(parts), secrets)


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
    member_name: str,
    runner: Runner,
    *,
    releases: Sequence[str] | None = None,
    helm_executable: str | None = None,
    progress: Progress | None = None,
) -> DryRunReport:
    """Render every release (or the named ones) with `helm template` and validate the objects
    against the member's Kubernetes version. Needs no cluster. A release whose chart cannot be
    fetched or rendered is reported in `failed` and the others still go on."""
    say = progress or _noop
    member = fed.member(member_name)
    refuse_external(member)
    rendered = render_member(fed, member_name, list(releases) if releases else None)
    secrets = _secret_strings(rendered)
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
            validate_manifests(docs, schema_version, release.namespace),
        ))
    return report


def _secret_strings(rendered: Iterable[RenderedRelease]) -> set[str]:
    found: set[str] = set()
    for item in rendered:
        found |= item.secret_strings()
    return found


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
    member_name: str,
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
    member = fed.member(member_name)
    refuse_external(member)
    chosen = normalise_stages(stages)
    report = DeployReport(member.name, chosen)
    rendered: list[RenderedRelease] = []
    if CLUSTER_STAGES & set(chosen):
        # render before any tool runs: invalid values never reach a cluster
        rendered = render_member(fed, member_name, list(releases) if releases else None)
        tools = tools or find_cluster_tools(member)
        helm = Helm(runner, executable=helm_executable, timeout=timeout,
                    secrets=_secret_strings(rendered))
        report.helm_version = helm.version
        _cluster_stages(fed, member, runner, helm, tools, rendered, chosen, timeout, report, say)
    if "verify" in chosen:
        say(f"stage verify: {member.name}")
        report.verified = verify_member(member, retry, fetch=verify_fetch, sleep=sleep,
                                        progress=say)
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
        if exc.summary and exc.summary.startswith("stage "):
            raise
        # only the credential tools (gcloud, aws) fail outside a named stage
        raise ToolError(
            exc.argv, exc.returncode, exc.stdout, exc.stderr,
            summary=f"stage 'auth' failed: could not get credentials for member "
                    f"{member.name!r} ({member.cloud})",
            hint=exc.hint or _credentials_hint(member),
        ) from None
    finally:
        helm.use_cluster(None)


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
    hint = exc.hint
    if is_unreachable(exc.stderr):
        hint = "the cluster stopped answering: check the network path and credentials, then " \
               "deploy again (helm upgrade is idempotent)"
    return ToolError(exc.argv, exc.returncode, exc.stdout, exc.stderr,
                     summary=f"stage {stage!r} failed: {what} ({after})", hint=hint)


def upgrade_redirector_release(
    fed: Federation,
    runner: Runner,
    *,
    timeout: str = DEFAULT_TIMEOUT,
    helm_executable: str | None = None,
    tools: ClusterTools | None = None,
    progress: Progress | None = None,
) -> DeployReport:
    """Publish the redirector's weights in production: a deploy of only the redirector release
    on its member (auth, releases, rollout; no verify: the ramp watches the redirector)."""
    return deploy_member(
        fed, fed.redirector.member, runner, releases=[fed.redirector.release],
        stages=("auth", "releases", "rollout"), timeout=timeout,
        helm_executable=helm_executable, tools=tools, progress=progress,
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
    member_name: str,
    runner: Runner,
    *,
    releases: Sequence[str] | None = None,
    helm_executable: str | None = None,
    tools: ClusterTools | None = None,
    progress: Progress | None = None,
) -> DiffReport:
    """Compare each release with what is deployed: the helm-diff plugin when installed,
    otherwise `helm template` against `helm get manifest`, object by object."""
    say = progress or _noop
    member = fed.member(member_name)
    refuse_external(member)
    rendered = render_member(fed, member_name, list(releases) if releases else None)
    tools = tools or find_cluster_tools(member)
    secrets = _secret_strings(rendered)
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
        if exc.summary and exc.summary.startswith("stage "):
            raise
        raise ToolError(exc.argv, exc.returncode, exc.stdout, exc.stderr,
                        summary=f"stage 'auth' failed: could not get credentials for member "
                                f"{member.name!r} ({member.cloud})",
                        hint=exc.hint or _credentials_hint(member)) from None
    finally:
        helm.use_cluster(None)
    return report
