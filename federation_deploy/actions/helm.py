"""The helm adapter (the only module importing pyhelm3): find helm, run it through the Runner."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyhelm3
import semver
import yaml

from federation_deploy.actions.kube_auth import (
    ClusterAccess,
    Which,
)
from federation_deploy.config import Release
from federation_deploy.errors import FederationDeployError, MissingToolError, ToolError
from federation_deploy.progress import Progress, quiet
from federation_deploy.runner import Runner
from federation_deploy.values.render import RenderedRelease, describe_chart
from federation_deploy.values.secrets import censor

T = TypeVar("T")

HELM_ENV = "FEDERATION_DEPLOY_HELM"
# Where scripts/fetch_helm.py puts helm in a source checkout (the last place we look).
CHECKOUT_HELM = Path(__file__).resolve().parents[2] / "bin" / "helm"
HELM_FIX = (
    "install helm 3 (https://helm.sh/docs/intro/install/), or run `python scripts/fetch_helm.py` "
    f"in a checkout (it puts helm 3.17.2 in bin/), or set {HELM_ENV}=/path/to/helm"
)
DEFAULT_TIMEOUT = "10m"


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


class RunnerCommand(pyhelm3.Command):
    """pyhelm3's Command whose one subprocess call, `run`, goes through our Runner.

    The Runner echoes the (censored) argv to stderr and runs it; values travel
    as JSON on stdin (pyhelm3's `--values -`), so no values file is ever written. A failure
    becomes ToolError carrying helm's own stderr, censored with this command's secrets. Tests
    hand in a recording Runner and see the exact argv.

    Output is censored here, not by the Runner: a censored `***` inside YAML is an alias and
    would break pyhelm3's parsing of helm's answers, so the Runner censors them only in what it
    shows (`shown_secrets`: the echo and helm's stderr as it streams).
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
        if self.runner.full_output:  # -v: helm says what it waits for (on stderr)
            argv.append("--debug")
        if self.access is not None:
            argv += ["--kubeconfig", str(self.access.kubeconfig)]
            if self.access.context:
                argv += ["--kube-context", self.access.context]
        return argv

    def run_sync(self, command: Sequence[Any], input: bytes | None = None) -> bytes:
        argv = self.argv(command)
        env = None
        if self.access is not None:
            # plugins (helm-diff) and exec credential plugins read KUBECONFIG, not the flag
            env = {"KUBECONFIG": str(self.access.kubeconfig)}
        # stdout is data pyhelm3 parses (JSON, YAML); stderr (warnings, --debug) is shown live
        proc = self.runner.run(
            argv, input=None if input is None else input.decode("utf-8"), env=env, check=False,
            live="stderr", shown_secrets=self.secrets,
        )
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
            proc = self.runner.run([self.executable, "version", "--short"])
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
    """Run one of pyhelm3's coroutines to the end. Not asyncio.run: it installs a SIGINT
    handler of its own that turns the first Ctrl-C into a cancellation, which our blocking
    Runner call never sees, so helm (in its own session) was never told and the first Ctrl-C
    was lost. A bare loop leaves SIGINT to Python's default: KeyboardInterrupt in the Runner,
    which forwards it to helm at once, as for terraform."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


@dataclass(frozen=True)
class DeployedRelease:
    name: str
    namespace: str
    chart: str
    version: str
    revision: int | None
    status: str


@dataclass(frozen=True)
class HistoryEntry:
    """One revision of a release as `helm history` lists it."""

    revision: int
    status: str  # deployed, superseded, failed, pending-install, pending-upgrade, ...
    chart: str = ""
    description: str = ""


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
        self._built: dict[Path, Path] = {}  # a chart directory -> where helm reads it
        self._workdir: Path | None = None
        self._cleanup: weakref.finalize | None = None

    def use_cluster(self, access: ClusterAccess | None) -> None:
        """Bind every later helm command to this run's kubeconfig (never the user's default)."""
        self.command.access = access

    def censor(self, text: str) -> str:
        return censor(text, self.command.secrets)

    def build_dependencies(self, release: Release, *, update: bool = False,
                           progress: Progress | None = None) -> bool:
        """The dependencies of a local chart directory, built (once per run) in a private
        copy of the directory, which every later helm command of the run uses; True when it
        ran. With a Chart.lock: `helm dependency build` (the locked versions). Without one
        (mybinder.org-deploy git-ignores it and its CD updates): `helm dependency update`,
        said on progress. The user's directory (Chart.lock, charts/) is never written, except
        Chart.lock copied back when update (--update-dependencies) asks for it. helm gets a
        private temporary config and cache (0700): Chart.yaml's repositories are added
        there, never to the user's helm config."""
        say = progress or quiet
        directory = release.local_chart
        if directory is None or directory in self._built:
            return False
        dependencies = chart_dependencies(directory)
        if not dependencies:
            self._built[directory] = directory  # nothing to build: the directory as it is
            return False
        lock = directory / "Chart.lock"
        locked = lock.is_file()
        action = "update" if update or not locked else "build"
        if not locked and not update:
            say(f"chart {release.chart} has no committed Chart.lock: its dependency versions "
                "are resolved from Chart.yaml's ranges now (`helm dependency update` in a "
                "private copy; --update-dependencies writes the Chart.lock back to commit)")
        copy = self._private_copy(directory)
        repositories = list(dict.fromkeys(
            str(d["repository"]) for d in dependencies
            if str(d.get("repository", "")).startswith(("https://", "http://"))))
        with tempfile.TemporaryDirectory(prefix="helm-home-") as home:
            env = private_helm_env(Path(home))
            try:
                for index, url in enumerate(repositories):
                    self.runner.run([self.executable, "repo", "add", f"dependency-{index}", url,
                                     "--force-update"], env=env)
                argv = [self.executable, "dependency", action, str(copy),
                        "--repository-cache", env["HELM_REPOSITORY_CACHE"]]
                if repositories and action == "build":
                    argv.append("--skip-refresh")  # `repo add` fetched the indexes just now
                self.runner.run(argv, env=env)
            except ToolError as exc:
                raise exc.with_context(
                    f"cannot {action} the dependencies of chart {release.chart} "
                    f"(release {release.name!r}): {first_line(exc.stderr)}",
                    hint="check Chart.yaml's repositories and the network; when Chart.lock is "
                         "out of date, --update-dependencies rewrites it") from None
        if update and (copy / "Chart.lock").is_file():
            shutil.copyfile(copy / "Chart.lock", lock)
            say(f"chart {release.chart}: Chart.lock written (commit it)")
        self._built[directory] = copy
        return True

    def _private_copy(self, directory: Path) -> Path:
        """A copy of a chart directory in this run's private (0700) temporary directory."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="federation-deploy-charts-"))
            # removed by close(), or when this Helm is collected
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._workdir, True)
        # a folder of its own: a copy whose build failed keeps its place, and a later
        # release of the same chart must not copy onto it
        copy = Path(tempfile.mkdtemp(dir=self._workdir)) / directory.name
        shutil.copytree(directory, copy, symlinks=True)
        return copy

    def chart_path(self, release: Release) -> Path | None:
        """Where helm reads a chart on disk: the private copy with its dependencies built,
        else the package's or user's directory; None for a chart from a repository."""
        directory = release.chart_dir
        return None if directory is None else self._built.get(directory, directory)

    def close(self) -> None:
        """Remove the private chart copies."""
        if self._cleanup is not None:
            self._cleanup()

    def fetch_chart(self, release: Release) -> Any:
        """pyhelm3's Chart for release (`helm show chart`; remote charts are downloaded):
        ToolError naming the chart and helm's reason when it cannot be fetched."""
        if release.chart_dir is not None:
            ref: Any = self.chart_path(release)
            repo, version = None, None
        else:
            ref, repo, version = release.chart, release.repo, release.version
        try:
            return _complete(self.client.get_chart(ref, repo=repo, version=version))
        except ToolError as exc:
            raise exc.with_context(
                f"cannot fetch chart {describe_chart(release)} for release {release.name!r}: "
                f"{first_line(exc.stderr)}",
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
        revision = _complete(self.client.install_or_upgrade_release(
            release.helm_name, chart, rendered.values,
            atomic=True, wait=True, timeout=timeout, namespace=release.namespace,
            create_namespace=True,
        ))
        return DeployedRelease(
            release.helm_name, release.namespace, release.chart, release.version,
            int(revision.revision), str(getattr(revision.status, "value", revision.status)),
        )

    def history(self, release: Release) -> list[HistoryEntry]:
        """`helm history -o json` of release, oldest first; [] when it is not installed."""
        try:
            data = _complete(self.command.history(release.helm_name,
                                                  namespace=release.namespace))
        except ToolError as exc:
            if "release: not found" in exc.stderr.lower():
                return []
            raise
        entries = [HistoryEntry(int(item["revision"]), str(item.get("status", "")),
                                str(item.get("chart", "")), str(item.get("description", "")))
                   for item in data or [] if isinstance(item, dict) and "revision" in item]
        return sorted(entries, key=lambda entry: entry.revision)

    def rollback(self, release: Release, revision: int | None, *, timeout: str) -> None:
        """`helm rollback NAME REVISION --wait --cleanup-on-fail` (a stuck release freed; with
        revision None the previous revision: a rollout's ring that failed after its upgrade
        went through)."""
        _complete(self.command.rollback(release.helm_name, revision,
                                        namespace=release.namespace, wait=True,
                                        cleanup_on_fail=True, timeout=timeout))

    def uninstall(self, release: Release, *, timeout: str) -> None:
        """`helm uninstall NAME --wait` (a release stuck in pending-install, never deployed)."""
        _complete(self.command.uninstall(release.helm_name, namespace=release.namespace,
                                         wait=True, timeout=timeout))

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
        if release.chart_dir is not None:
            ref, repo, version = str(self.chart_path(release)), None, None
        else:
            ref, repo, version = release.chart, release.repo, release.version
        return _complete(self.command.template_manifests(
            release.helm_name, ref, rendered.values, namespace=release.namespace, repo=repo,
            version=version, kube_version=kube_version, is_upgrade=is_upgrade,
            include_crds=include_crds,
        ))

    def get_manifest(self, release: Release) -> str | None:
        """What is deployed (`helm get manifest`), or None when the release is not installed."""
        try:
            out = _complete(self.command.run(
                ["get", "manifest", release.helm_name, "--namespace", release.namespace]))
        except ToolError as exc:
            if "release: not found" in exc.stderr.lower():
                return None
            raise
        return out.decode("utf-8")

    def deployed_values(self, release: Release) -> dict[str, Any] | None:
        """The values the deployed release was given (`helm get values -o json`), or None
        when the release is not installed."""
        try:
            out = _complete(self.command.run(
                ["get", "values", release.helm_name, "--namespace", release.namespace,
                 "--output", "json"]))
        except ToolError as exc:
            if "release: not found" in exc.stderr.lower():
                return None
            raise
        try:
            values = json.loads(out.decode("utf-8") or "null")
        except json.JSONDecodeError:
            return None
        return values if isinstance(values, dict) else {}

    def listed_release(self, release: Release) -> dict[str, Any] | None:
        """The release as `helm list --all` shows it (name, chart `NAME-VERSION`, status,
        revision, app_version), or None when it is not installed."""
        out = _complete(self.command.run(
            ["list", "--all", "--filter", f"^{re.escape(release.helm_name)}$", "--namespace",
             release.namespace, "--output", "json"]))
        try:
            found = json.loads(out.decode("utf-8") or "[]")
        except json.JSONDecodeError:
            return None
        for item in found if isinstance(found, list) else []:
            if isinstance(item, dict) and item.get("name") == release.helm_name:
                return item
        return None

    def has_diff_plugin(self) -> bool:
        out = _complete(self.command.run(["plugin", "list"])).decode("utf-8")
        return any(line.split()[:1] == ["diff"] for line in out.splitlines())

    def diff_upgrade(self, rendered: RenderedRelease) -> str:
        """helm-diff's view of an upgrade (Secret contents masked by helm-diff; censored)."""
        release = rendered.release
        ref: Any = self.chart_path(release) or release.chart
        out = _complete(self.command.diff_upgrade(
            release.helm_name, ref, rendered.values, namespace=release.namespace,
            repo=release.repo, version=None if release.chart_dir else release.version,
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


def chart_dependencies(directory: Path) -> list[dict[str, Any]]:
    """The dependencies Chart.yaml declares (the loader has checked the file)."""
    meta = yaml.safe_load((directory / "Chart.yaml").read_text(encoding="utf-8")) or {}
    return [d for d in meta.get("dependencies") or [] if isinstance(d, dict)]


def private_helm_env(home: Path) -> dict[str, str]:
    """HELM_* variables pointing helm's config and caches into home (a private temporary
    directory), so that a dependency build reads and writes nothing of the user's."""
    return {
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_REPOSITORY_CONFIG": str(home / "config" / "repositories.yaml"),
        "HELM_REPOSITORY_CACHE": str(home / "cache" / "repository"),
    }


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


def secret_strings(rendered: Iterable[RenderedRelease]) -> set[str]:
    """Every secret string of the rendered values: helm's output is censored with them."""
    found: set[str] = set()
    for item in rendered:
        found |= item.secret_strings()
    return found
