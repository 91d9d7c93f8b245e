"""Click command `deploy` (thin: parse options, confirm, call commands.deploy, print)."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context, confirm_or_abort
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import (
    POSITIVE_DURATION,
    member_argument,
    release_option,
)
from federation_deploy.commands import deploy as commands
from federation_deploy.durations import Duration
from federation_deploy.errors import UsageError


@click.command()
@member_argument
@click.option("--dry-run", is_flag=True,
              help="Touch no cluster: render every release with `helm template`, validate each "
                   "object against the Kubernetes schemas of the member's kubernetes_version; "
                   "manifests (Secrets redacted) to stdout, a summary to stderr. Exit 1 when a "
                   "chart cannot be fetched or rendered or an object is invalid.")
@release_option
@click.option("--stage", "stages", multiple=True, metavar="STAGE|hooks|HOOK",
              help="Run only this stage (repeatable): auth (credentials and a reachability "
                   "check), releases (helm upgrade; brings auth and rollout), rollout (brings "
                   "auth), verify (/health and /versions), hooks (every hook of the member) "
                   "or one hook by name. Default: all, in that order, each hook after the "
                   "stage it names.")
@click.option("--without-secrets", is_flag=True,
              help="With --dry-run: leave out the secret values files (the stand-in of "
                   "secrets.stand_in in their place), for pull requests without the key.")
@click.option("--update-dependencies", is_flag=True,
              help="For chart directories: `helm dependency update` and write the new "
                   "Chart.lock back (else the dependencies are built in a private copy and "
                   "the directory is never written).")
@click.option("--recover", is_flag=True,
              help="A release stuck in pending-install/-upgrade/-rollback (a cancelled run): "
                   "roll it back to its last deployed revision (uninstall it when none was "
                   "ever deployed), then upgrade. Without it such a release stops the deploy "
                   "before any upgrade, saying how to free it.")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask for confirmation (never asked in CI, where $CI is set).")
@click.option("--timeout", type=POSITIVE_DURATION, default=commands.DEFAULT_TIMEOUT,
              show_default=True,
              help="Per release: helm --timeout, and kubectl rollout status --timeout "
                   "(like 10m, 1.5m, 90s, 500ms; passed on as a Go duration).")
@click.pass_obj
def deploy(obj: Context, member: str, dry_run: bool, releases: tuple[str, ...],
           stages: tuple[str, ...], without_secrets: bool, update_dependencies: bool,
           recover: bool, yes: bool, timeout: Duration) -> None:
    """Deploy MEMBER's Helm releases to its cluster, then check it.

    \b
    1. auth      credentials for the member's cloud (gcloud container clusters
                 get-credentials, aws eks update-kubeconfig, or its kubeconfig from
                 the secrets directory) in a private KUBECONFIG for this run only
    2. releases  every release in config order: helm upgrade --install --atomic
                 --wait --create-namespace, values on stdin (never written to disk);
                 a release's `crds` applied first (kubectl apply --server-side), a
                 chart directory's dependencies built (helm dependency build)
    3. rollout   kubectl rollout status of the deployments and daemonsets of the
                 release namespaces
    4. verify    the member's /health (every check ok) and /versions, with retries

    The member's hooks run after the stage each names (after: auth|releases|rollout|
    verify), in the config directory, with the run's KUBECONFIG. A failing stage or hook
    stops the later ones; the error names it and shows the tool's own output (exit 1).
    Outside CI it asks before changing anything unless --yes. External members are never
    deployed.
    """
    fed = obj.federation()
    if dry_run and stages:
        raise UsageError("--dry-run renders and validates only: it takes no --stage")
    if without_secrets and not dry_run:
        raise UsageError("--without-secrets is for --dry-run: a deploy needs the secrets")
    if dry_run:
        emit(obj, commands.dry_run(fed, member, runner=obj.runner(), progress=obj.progress,
                                   releases=releases, without_secrets=without_secrets,
                                   update_dependencies=update_dependencies))
        return
    plan = commands.plan_deploy(fed, member, releases, stages, progress=obj.progress,
                                recover=recover)
    if "releases" in plan.stages:
        names = plan.release_names
        confirm_or_abort(
            f"Deploy {len(names)} release(s) ({', '.join(names)}) to member {member} "
            f"({plan.member.cloud})?", yes)
    emit(obj, commands.deploy(fed, plan, runner=obj.runner(), progress=obj.progress,
                              timeout=timeout.go, update_dependencies=update_dependencies,
                              recover=recover))


COMMANDS: list[click.Command] = [deploy]
