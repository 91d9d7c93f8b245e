"""Commands `sandbox demo`, `sandbox up`, `sandbox down` and `sandbox member`: the local
federation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation, load_federation
from federation_deploy.errors import UsageError
from federation_deploy.runner import Runner
from federation_deploy.sandbox import federation as sb

default_root = sb.default_root


def demo(config_dir: Path, *, steps: str, hold: float, launches: int, keep: bool,
         runner: Runner, progress: Callable[[str], None]) -> CommandResult:
    """The whole demo once; stdout: the shares measured at the ramp's last step."""
    from federation_deploy.traffic.ramp import parse_steps

    parsed = tuple(s for s in parse_steps(steps) if s < 100)
    options = sb.DemoOptions(steps=parsed, hold=hold, launches=launches)
    measures = sb.run_demo(config_dir, options, runner, progress, keep=keep)
    last = measures[-1]
    return CommandResult(stdout=(
        f"shares after the ramp of {sb.RAMP_MEMBER} to {last.percent:g}% "
        f"({last.launches} launches):\n"
        + sb.final_table(last)
        + sb.ramp_summary(load_federation(config_dir).redirector.ramp_policy) + "\n"))


def up(config_dir: Path, root: Path, redirector_port: int | None, *, runner: Runner,
       progress: Callable[[str], None]) -> CommandResult:
    """Start the sandbox and leave it running; stdout: its URLs and how to use it."""
    state = sb.sandbox_up(config_dir, root, runner, progress, redirector_port)
    lines = [f"redirector: {state.redirector_url}"]
    lines += [f"{service.name}: {service.url}  (log {service.log})" for service in state.services]
    # its federation.yaml says it is a sandbox: weight changes go to its redirector, terraform
    # to its moto_server, and no cloud credential is ever fetched (no --publish, no exports)
    lines.append("use it with (a sandbox: weight changes go to its redirector, terraform to its "
                 "moto_server; no cloud credential is fetched):")
    lines.append(f"  export FEDERATION_DEPLOY_CONFIG_DIR={state.config_dir}")
    lines.append("  federation-deploy traffic")
    lines.append("  # steps that pass on health checks alone:")
    lines.append("  federation-deploy ramp curvenote --to-weight 40 --steps 1,5,25,100 --hold 10s "
                 "--gate time --yes")
    lines.append("  # judged on launch evidence (its Prometheus stand-in, named in its "
                 "federation.yaml), with probes answered by the stand-ins:")
    lines.append("  federation-deploy ramp curvenote --to-weight 40 --hold 1m "
                 "--probe gh/binder-examples/requirements/HEAD --probe-interval 2s --yes")
    lines.append('  federation-deploy traffic drain ovh2 --reason "a trial"   '
                 "# then: traffic restore ovh2 --yes")
    lines.append(f"stop it with: federation-deploy sandbox down --dir {root}")
    return CommandResult(stdout="\n".join(lines) + "\n")


def down(root: Path, *, progress: Callable[[str], None] | None = None) -> CommandResult:
    """Stop every process of a sandbox started with `up` and remove its files; progress hears
    what is being stopped before the wait."""
    stopped, left_alone = sb.sandbox_down(root, progress)
    return CommandResult(messages=(*(f"warning: {line}" for line in left_alone),
                                   f"stopped {', '.join(stopped) or 'nothing'}; removed {root}"))


def member(fed: Federation, name: str, *, healthy: bool | None = None,
           fail_every: int | None = None, versions: tuple[str, ...] = ()) -> CommandResult:
    """Tell a sandbox's stand-in member how to behave (PUT /_standin/state): healthy or not,
    every n-th launch failing, the versions its /versions reports (KEY=VALUE, merged); with
    nothing to change, show how it behaves now."""
    from federation_deploy.sandbox.member import StandinError, standin_state

    if fed.sandbox is None:
        raise UsageError(f"{fed.path} is not a sandbox (no `sandbox:` block): `sandbox member` "
                         "changes only the stand-ins of `sandbox up`")
    member = fed.member(name)
    changes: dict[str, object] = {}
    if healthy is not None:
        changes["healthy"] = healthy
    if fail_every is not None:
        changes["failure_every"] = fail_every
    reported: dict[str, str] = {}
    for item in versions:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise UsageError(f"--version {item!r}: expected KEY=VERSION, like binderhub=1.2.3")
        reported[key] = value
    try:
        if reported:
            current = standin_state(member.url)
            changes["versions"] = {**dict(current.get("versions") or {}), **reported}
        state = standin_state(member.url, changes or None)
    except StandinError as exc:
        raise UsageError(f"{name}: {exc}") from None
    shown = ", ".join(f"{k} {v}" for k, v in dict(state.get("versions") or {}).items())
    return CommandResult(stdout=(
        f"{name}: {'healthy' if state.get('healthy') else 'unhealthy'}; every "
        f"{state.get('failure_every') or 'no'}{'th' if state.get('failure_every') else ''} "
        f"launch fails; /versions: {shown or '{}'}\n").replace("every no launch fails",
                                                                  "no launch fails"))
