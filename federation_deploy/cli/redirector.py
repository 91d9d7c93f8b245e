"""Click commands for the federation redirector: `redirector config` and `redirector serve`."""

from __future__ import annotations

from pathlib import Path

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.cli.params import SuggestingGroup
from federation_deploy.commands import redirector as commands


@click.group(cls=SuggestingGroup)
def redirector() -> None:
    """The federation redirector: mybinder.org's launch traffic router, drop-in compatible.

    `config` writes its config.json from federation.yaml; `serve` runs it.
    """


@redirector.command("config")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="PATH",
              help="Write config.json here (atomically: readers never see half a file; a "
                   "running redirector watching PATH picks it up within 2 s), as `--publish "
                   "file:PATH` does: an older generation than PATH's is refused (exit 1). "
                   "Default: stdout.")
@click.pass_obj
def config_command(obj: Context, output: Path | None) -> None:
    """Print the redirector's config.json, generated from federation.yaml.

    The format is mybinder.org's `federationRedirect` values as JSON: hosts {name: {url,
    weight, prime, ramp, health, versions}}, check {period, jitter, retries, timeout,
    failed_period}, load_balancer, pod_headroom, host_cookie_age_hours; and two keys of this
    redirector: generation (the weights' version, from federation.yaml's `generation:`; a
    publish compares it and /active_hosts reports it) and ramp_policy (how a member with
    `ramp` gets its share: sticky, a set of repositories, or per-launch, a draw per launch).
    Only routed members are listed.
    """
    emit(obj, commands.config(obj.federation(), output, obj.progress))


@redirector.command("serve")
@click.option("--config", "config_path", required=True, metavar="PATH",
              type=click.Path(dir_okay=False, path_type=Path),
              help="config.json to serve (from `redirector config`, or mybinder's own "
                   "federationRedirect JSON). Watched: a valid change applies within 2 s "
                   "without a restart; an invalid one is logged, counted in /metrics and "
                   "ignored.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on (0: a free one, logged).")
@click.option("--address", default="0.0.0.0", show_default=True,
              help="Address to listen on.")
@click.pass_obj
def serve_command(obj: Context, config_path: Path, port: int, address: str) -> None:
    """Run the redirector until SIGTERM or SIGINT (in-flight requests are finished first).

    \b
    /build/...     307 to a healthy member (cookie `host` keeps a browser on it)
    /active_hosts  the healthy members, as JSON
    /health        the redirector's own health
    /metrics       Prometheus metrics: member health, redirects, reloads, weights
    anything else  proxied (GET) to the prime, or the best healthy member
    \b
    Members are checked every check.period seconds (/versions equal to the prime's, every
    /health check ok, pod quota headroom); a member gets no launches before it passes.
    An invalid config at start is an error (exit 2).
    """
    emit(obj, commands.serve(config_path, port, address))


COMMANDS: list[click.Command] = [redirector]
