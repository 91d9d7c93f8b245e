"""Publish the redirector's weights, compare-and-swap: a helm upgrade of its release, or its
config.json file (the rule itself is weights.check_publish)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from federation_deploy.config import Federation
from federation_deploy.errors import UsageError
from federation_deploy.runner import Runner
from federation_deploy.traffic.weights import (
    LOCK_TIMEOUT,
    PublishedWeights,
    check_publish,
    lock_path,
    locked,
    published_from_config,
)
from federation_deploy.values.redirector_config import redirector_config
from federation_deploy.yamlio import atomic_write_text

if TYPE_CHECKING:
    from federation_deploy.actions.helm import DeployedRelease, Helm
    from federation_deploy.actions.kube_auth import ClusterTools

DEFAULT_TIMEOUT = "10m"  # helm's --timeout of the redirector's upgrade (actions.helm's)


@dataclass(frozen=True)
class PublishTarget:
    """Where weights go: `helm` (the redirector release on its member) or `file:PATH`."""

    kind: str  # "helm" or "file"
    path: Path | None = None

    def __str__(self) -> str:
        return "helm" if self.kind == "helm" else f"file:{self.path}"


def parse_publish_target(text: str) -> PublishTarget:
    """`helm` or `file:PATH`; UsageError otherwise."""
    if text == "helm":
        return PublishTarget("helm")
    if text.startswith("file:") and text[len("file:"):]:
        return PublishTarget("file", Path(text[len("file:"):]))
    raise UsageError(f"invalid --publish {text!r}: expected `helm` or `file:PATH`")


def resolve_publish_target(fed: Federation, text: str | None) -> PublishTarget:
    """Where a weight change of fed goes: --publish as given, else `helm` (the redirector
    release on its member); in a sandbox the sandbox's own redirector file, and never helm."""
    sandbox = fed.sandbox
    if sandbox is None:
        return parse_publish_target(text or "helm")
    if text is None:
        return PublishTarget("file", sandbox.redirector_config)
    target = parse_publish_target(text)
    if target.kind == "helm":
        fed.refuse_in_sandbox(
            f"--publish helm would upgrade the redirector release on member "
            f"{fed.redirector.member}'s real cluster; without --publish a sandbox publishes "
            f"to its own redirector (file:{sandbox.redirector_config})")
    return target


def redirector_url_for(fed: Federation, url: str | None) -> str | None:
    """The redirector to wait for: --redirector-url as given, else a sandbox's own."""
    if url is None and fed.sandbox is not None:
        return fed.sandbox.redirector_url
    return url


def redirector_config_text(fed: Federation) -> str:
    return json.dumps(redirector_config(fed), indent=2, sort_keys=False) + "\n"


def read_published_file(path: Path, fed: Federation | None = None) -> PublishedWeights | None:
    """The weights in the config.json at path; None when there is none, or it is not one
    (unreadable JSON is overwritten: the redirector keeps its last good config meanwhile)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return published_from_config(data, fed)


def check_file_target(path: Path) -> None:
    """UsageError unless a config.json can be published to path: its directory exists and is
    writable (the temp file and the lock go there), and path is not a directory."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UsageError(f"cannot publish to {path}: directory {path.parent} does not exist "
                         "(create it, or pass another --publish file:PATH)")
    if path.is_dir():
        raise UsageError(f"cannot publish to {path}: it is a directory (pass the config.json "
                         "file's path: --publish file:DIR/config.json)")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot publish to {path}: directory {path.parent} is not writable "
                         "by this user (fix its permissions, or pass another --publish)")


def publish_file(fed: Federation, path: Path, timeout: float = LOCK_TIMEOUT,
                 progress: Callable[[str], None] | None = None) -> None:
    """Write the redirector's config.json to path atomically (the redirector hot-reloads it,
    and never reads half a file), as a compare-and-swap: under a flock on the sidecar
    `.config.json.lock`, read the generation there and refuse (WeightsConflict) an older one
    (weights.check_publish), then write and rename. progress hears a held lock's holder."""
    path = Path(path)
    check_file_target(path)
    with locked(lock_path(path), timeout, name="the publish lock", progress=progress):
        check_publish(fed, read_published_file(path, fed), f"file:{path}")
        atomic_write_text(path, redirector_config_text(fed), mode=0o644)


def publish_helm(
    fed: Federation, runner: Runner, progress: Callable[[str], None] | None = None
) -> None:
    """Upgrade the redirector's release on its member with the weights in fed (through the
    deploy's helm adapter, so credentials and chart pins are handled in one place)."""
    fed.refuse_in_sandbox("publishing the weights with helm (an upgrade of the redirector "
                          "release on a real cluster)")
    upgrade_redirector_release(fed, runner, progress=progress)


def read_published_helm(fed: Federation, runner: Runner) -> PublishedWeights | None:
    """The weights the deployed redirector release carries (`helm get values`)."""
    fed.refuse_in_sandbox("reading the weights the redirector release serves on a real cluster")
    return deployed_redirector_weights(fed, runner)


# The redirector release through the helm adapter, imported lazily: it pulls in pyhelm3, which
# traffic and file publishing never need.

def redirector_published(helm: Helm, fed: Federation) -> PublishedWeights | None:
    """The weights the deployed redirector release serves (helm bound to its cluster)."""
    member = fed.member(fed.redirector.member)
    values = helm.deployed_values(member.release(fed.redirector.release))
    return None if values is None else published_from_config(values.get("federationRedirect"), fed)


def check_redirector_publish(helm: Helm, fed: Federation) -> None:
    """Before upgrading the redirector release: refuse weights older than those it serves
    (weights.check_publish; WeightsConflict, exit 1). helm has no compare-and-swap of its
    own: a writer racing between this read and the upgrade is kept out by the shared
    concurrency group of cd.yml and ramp.yml, and seen by the ramp's watch of /active_hosts."""
    where = f"helm release {fed.redirector.release} on {fed.redirector.member}"
    check_publish(fed, redirector_published(helm, fed), where)


def deployed_redirector_weights(
    fed: Federation, runner: Runner, *, helm_executable: str | None = None,
    tools: ClusterTools | None = None,
) -> PublishedWeights | None:
    """What the redirector release serves now, read with its member's credentials."""
    from federation_deploy.actions.helm import Helm
    from federation_deploy.actions.kube_auth import cluster_access, find_cluster_tools

    member = fed.member(fed.redirector.member)
    helm = Helm(runner, executable=helm_executable)
    with cluster_access(fed, member, runner, tools or find_cluster_tools(member)) as access:
        helm.use_cluster(access)
        return redirector_published(helm, fed)


def upgrade_redirector_release(
    fed: Federation,
    runner: Runner,
    *,
    timeout: str = DEFAULT_TIMEOUT,
    helm_executable: str | None = None,
    tools: ClusterTools | None = None,
    progress: Callable[[str], None] | None = None,
) -> DeployedRelease:
    """Publish the redirector's weights in production: `helm upgrade --install --atomic
    --wait` of only the redirector release, with its member's credentials (the ramp's publish
    step; `deploy` of that member does the same with its stages and checks)."""
    from federation_deploy.actions.helm import Helm, secret_strings
    from federation_deploy.actions.kube_auth import (
        cluster_access,
        find_cluster_tools,
        probe_cluster,
    )
    from federation_deploy.values.render import render_releases

    say = progress or (lambda _message: None)
    member = fed.member(fed.redirector.member)  # config guarantees a deployable member
    (rendered,) = render_releases(fed, member, [fed.redirector.release])
    helm = Helm(runner, executable=helm_executable, timeout=timeout,
                secrets=secret_strings([rendered]))
    with cluster_access(fed, member, runner, tools or find_cluster_tools(member)) as access:
        probe_cluster(runner, access)
        helm.use_cluster(access)
        check_redirector_publish(helm, fed)
        # an umbrella chart directory (mybinder/) needs its dependencies like any deploy
        try:
            if helm.build_dependencies(rendered.release, progress=say):
                say(f"publish: dependencies of {rendered.release.chart} built")
            chart = helm.fetch_chart(rendered.release)
            say(f"publish: helm upgrade {rendered.release.helm_name} on {member.name}")
            return helm.upgrade(rendered, chart, timeout=timeout)
        finally:
            helm.close()


class Publisher:
    """Publishes a federation's weights to one target (call it), compare-and-swap; and says
    what that target serves now (published)."""

    def __init__(self, target: PublishTarget, runner: Runner | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        if target.kind != "file" and runner is None:
            # the CLI context makes the one Runner (honouring -q/-v); a file target needs none
            raise ValueError("publishing with helm runs helm: pass the command's Runner")
        self.target = target
        self.runner = runner
        self.progress = progress

    def check(self) -> None:
        """Refuse (UsageError, exit 2) a target that cannot work, before anything is written:
        a file target's directory must exist and be writable; helm must be found."""
        if self.target.kind == "file":
            assert self.target.path is not None
            check_file_target(self.target.path)
            return
        from federation_deploy.actions.helm import (
            find_helm,  # lazily, as publish_helm: pyhelm3 only when needed
        )

        find_helm()

    def __call__(self, fed: Federation) -> None:
        if self.target.kind == "file":
            assert self.target.path is not None
            publish_file(fed, self.target.path, progress=self.progress)
            return
        assert self.runner is not None
        publish_helm(fed, self.runner, self.progress)

    def published(self, fed: Federation) -> PublishedWeights | None:
        """What the target serves now (None: nothing, or nothing we can read)."""
        if self.target.kind == "file":
            assert self.target.path is not None
            return read_published_file(self.target.path, fed)
        assert self.runner is not None
        return read_published_helm(fed, self.runner)


# The redirector hot-reloads a file within seconds; through helm the new ConfigMap reaches
# the pods only after the kubelet's sync (a minute or two).
SETTLE_TIMEOUT = {"file": 60.0, "helm": 300.0}


@dataclass(frozen=True)
class PublishRequest:
    """Where a weight change is published and which redirector is waited for, as the user
    gave them (`--publish`, `--redirector-url`, `--settle-timeout` in seconds)."""

    publish: str | None = None  # None: helm, or in a sandbox its own redirector's file
    redirector_url: str | None = None  # None: none, or in a sandbox its own redirector
    settle_timeout: float | None = None

    def for_federation(self, fed: Federation) -> PublishRequest:
        """The request with fed's defaults: `helm`; in a sandbox (`sandbox:` in
        federation.yaml) the sandbox's redirector file and URL, and `--publish helm` refused
        (a sandbox never reaches a real cluster)."""
        target = resolve_publish_target(fed, self.publish)
        return replace(self, publish=str(target),
                       redirector_url=redirector_url_for(fed, self.redirector_url))


def publisher_for(request: PublishRequest, runner: Runner | None,
                  progress: Callable[[str], None] | None) -> tuple[Publisher, float]:
    """The Publisher of a request (resolved: PublishRequest.for_federation) and how long the
    redirector may take to serve a change (the request's, else the target's default); bad
    targets and URLs refused (exit 2)."""
    from federation_deploy.traffic.live import check_redirector_url

    check_redirector_url(request.redirector_url)
    target = parse_publish_target(request.publish or "helm")
    settle = (request.settle_timeout if request.settle_timeout is not None
              else SETTLE_TIMEOUT[target.kind])
    return make_publisher(target, runner, progress), settle


def make_publisher(
    target: PublishTarget,
    runner: Runner | None = None,
    progress: Callable[[str], None] | None = None,
) -> Publisher:
    """A Publisher of a federation's weights to target."""
    return Publisher(target, runner, progress)
