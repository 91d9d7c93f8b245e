"""The kubectl adapter: workloads of a namespace and their rollout status, on one run's cluster."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from federation_deploy.actions.kube_auth import ClusterAccess
from federation_deploy.errors import ToolError
from federation_deploy.runner import Runner


def list_workloads(runner: Runner, access: ClusterAccess, namespace: str) -> list[str]:
    """`deployment.apps/x` and `daemonset.apps/y` names in namespace (read-only)."""
    proc = runner.run(access.kubectl_argv("get", "deployments,daemonsets", "--namespace",
                                          namespace, "--output", "name"))
    return [line.strip() for line in (proc.stdout or "").splitlines() if line.strip()]


def rollout_status(
    runner: Runner,
    access: ClusterAccess,
    namespaces: Sequence[str],
    *,
    timeout: str = "10m",
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Wait for each workload's rollout (`kubectl rollout status`); returns `ns/kind/name`
    of each. ToolError (stage 'rollout') naming the workload and carrying kubectl's stderr."""
    say = progress or (lambda _message: None)
    done: list[str] = []
    for namespace in dict.fromkeys(namespaces):  # each namespace once, in order
        try:
            workloads = list_workloads(runner, access, namespace)
        except ToolError as exc:
            raise _rollout_error(
                exc, f"cannot list the workloads of namespace {namespace!r}") from None
        for workload in workloads:
            say(f"rollout: {namespace}/{workload}")
            try:
                runner.run(access.kubectl_argv("rollout", "status", workload, "--namespace",
                                               namespace, f"--timeout={timeout}"), live="all")
            except ToolError as exc:
                raise _rollout_error(
                    exc, f"{workload} in namespace {namespace!r} did not finish rolling out"
                ) from None
            done.append(f"{namespace}/{workload}")
    return done


def _rollout_error(exc: ToolError, what: str) -> ToolError:
    return exc.with_context(what, stage="rollout")


def apply_crds(runner: Runner, access: ClusterAccess, source: str, config_dir: Path) -> str:
    """`kubectl apply --server-side --force-conflicts -f URL-or-file`: CustomResourceDefinitions
    that helm would not upgrade (cert-manager's), applied before their release. Server-side,
    because CRDs are too large for the last-applied annotation; forcing conflicts, because
    this file is the CRDs' one source of truth. A path is relative to the config directory."""
    target = source if source.startswith(("https://", "http://")) else str(config_dir / source)
    try:
        runner.run(access.kubectl_argv("apply", "--server-side", "--force-conflicts", "-f",
                                       target))
    except ToolError as exc:
        raise exc.with_context(f"cannot apply the CRDs {source}", stage="releases") from None
    return target
