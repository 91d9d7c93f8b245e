"""Click commands deploy, diff and verify: parse options, confirm, call commands.deploy."""

from __future__ import annotations

import click

from federation_deploy.cli.context import Context, confirm_or_abort
from federation_deploy.cli.github import append_step_summary
from federation_deploy.cli.params import (
    DURATION,
    POSITIVE_DURATION,
    complete_release,
    member_argument,
)
from federation_deploy.cli.step_summary import deploy_markdown
from federation_deploy.commands import deploy as commands
from federation_deploy.durations import Duration
from federation_deploy.errors import UsageError
from federation_deploy.health.probe import Retry
from federation_deploy.values.locked_files import require_unlocked


def _stdout(text: str) -> None:
    click.echo(text, nl=False)


def _exit(code: int) -> None:
    if code:
        click.get_current_context().exit(code)


release_option = click.option(
    "--release", "-r", "releases", multiple=True, metavar="NAME", shell_complete=complete_release,
    help="Only this release (repeatable). Default: every release of MEMBER, in config order.",
)


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
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask for confirmation (never asked in CI, where $CI is set).")
@click.option("--timeout", type=POSITIVE_DURATION, default=commands.DEFAULT_TIMEOUT,
              show_default=True,
              help="Per release: helm --timeout, and kubectl rollout status --timeout "
                   "(like 10m, 1.5m, 90s, 500ms; passed on as a Go duration).")
@click.pass_obj
def deploy(obj: Context, member: str, dry_run: bool, releases: tuple[str, ...],
           stages: tuple[str, ...], without_secrets: bool, update_dependencies: bool,
           yes: bool, timeout: Duration) -> None:
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
    target = commands.require_deployable(fed, member)
    if dry_run:
        code = commands.dry_run(fed, target, runner=obj.runner(), out=_stdout,
                                progress=obj.progress, releases=releases,
                                without_secrets=without_secrets,
                                update_dependencies=update_dependencies)
        _exit(code)
        return
    chosen, _hooks = commands.plan_stages(list(stages), target)  # unknown names: exit 2
    require_unlocked(fed, target, releases, chosen)  # every locked file, before the question
    if "releases" in chosen:
        names = list(releases) or [r.name for r in target.releases]
        confirm_or_abort(
            f"Deploy {len(names)} release(s) ({', '.join(names)}) to member {member} "
            f"({target.cloud})?", yes)
    commands.deploy(fed, target, runner=obj.runner(), progress=obj.progress,
                    releases=releases, stages=stages, timeout=timeout.go,
                    update_dependencies=update_dependencies, on_report=_summarise)


def _summarise(report: commands.DeployReport) -> None:
    """The deploy on the CI job's summary page (under GitHub Actions only)."""
    append_step_summary(deploy_markdown(report))


@click.command()
@member_argument
@release_option
@click.pass_obj
def diff(obj: Context, member: str, releases: tuple[str, ...]) -> None:
    """Show what `deploy MEMBER` would change, changing nothing.

    Uses the helm-diff plugin when it is installed (`helm plugin list`); otherwise compares
    `helm template` of each release with `helm get manifest` of what is deployed, object by
    object (Secret values shown as digests). Needs the cluster's credentials, like deploy.
    Exit 0 no change, 3 changes, 1 error.
    """
    fed = obj.federation()
    code = commands.diff(fed, commands.require_deployable(fed, member), runner=obj.runner(),
                         out=_stdout, progress=obj.progress, releases=releases)
    _exit(code)


@click.command()
@member_argument
@click.option("--attempts", type=click.IntRange(min=1), default=6, show_default=True,
              help="Tries per check before giving up.")
@click.option("--delay", type=DURATION, default="10s", show_default=True,
              help="Time between tries (like 10s, 1m, 500ms, or plain seconds).")
@click.option("--request-timeout", type=POSITIVE_DURATION, default="10s", show_default=True,
              help="Timeout of each HTTP request.")
@click.pass_obj
def verify(obj: Context, member: str, attempts: int, delay: Duration,
           request_timeout: Duration) -> None:
    """Check MEMBER is up: its /health and /versions (the deploy's verify stage alone).

    /health must answer JSON with `ok: true`, every `checks[].ok` true and the pod quota's
    headroom the redirector wants; /versions must answer a JSON object equal to the prime's.
    Each is retried. Prints both as JSON on stdout; exit 1 naming the failing check when the
    member stays unhealthy. Works for external members too.
    """
    retry = Retry(attempts=attempts, delay=delay.seconds, timeout=request_timeout.seconds)
    commands.verify(obj.federation(), member, out=_stdout, progress=obj.progress, retry=retry)


COMMANDS: list[click.Command] = [deploy, diff, verify]
