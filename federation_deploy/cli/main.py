"""Root Click group, global options and the one place errors become messages and exit codes."""

from __future__ import annotations

import importlib
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from federation_deploy.cli.context import Context
from federation_deploy.cli.github import (
    annotation_lines,
    append_step_summary,
    in_github_actions,
)
from federation_deploy.cli.params import SuggestingGroup
from federation_deploy.errors import (
    CONFIG_DIR_NOT_FOUND,
    EXIT_FAILED,
    ConfigError,
    FederationDeployError,
)
from federation_deploy.progress import printable
from federation_deploy.signals import signal_of, sigterm_as_interrupt

# the commands, in --help's order; each is defined in the cli module named after it (dashes as
# underscores) and imported only when it runs (or for --help), so `federation-deploy terraform
# plan` does not pay for pyhelm3 and tornado
COMMANDS = ("validate", "members", "render", "terraform", "deploy", "diff", "drift", "verify",
            "traffic", "ramp", "rollout", "freeze", "unfreeze", "redirector", "charts",
            "ci-matrix", "plan", "pr", "member", "sandbox", "adopt", "shadow", "schema",
            "completion")


class FederationGroup(SuggestingGroup):
    """A Click group that turns our errors into one clean message and the documented exit
    code, and imports each command's module only when needed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, str] = {}

    def add_lazy(self, name: str, module: str) -> None:
        self.lazy[name] = module

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.lazy, *(n for n in super().list_commands(ctx) if n not in self.lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module = importlib.import_module(f"federation_deploy.cli.{self.lazy[cmd_name]}")
            for command in module.COMMANDS:
                self.add_command(command)
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            add_verbosity_options(command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with sigterm_as_interrupt():
                return super().invoke(ctx)
        except FederationDeployError as raised:
            exc = _naming_the_environment(ctx, raised)
            step_summary = getattr(exc, "step_summary", None)
            if isinstance(step_summary, str):
                append_step_summary(step_summary)  # a refusal (a freeze) on the job's page
            click.echo(printable(f"error: {exc.render()}", keep_lines=True), err=True)
            if isinstance(exc, ConfigError) and in_github_actions():
                # workflow commands are read from stdout, which has no data after an error
                for line in annotation_lines(exc.problems):
                    click.echo(line)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            signum = signal_of(exc)
            click.echo("interrupted" if signum == signal.SIGINT
                       else f"interrupted ({signal.Signals(signum).name})", err=True)
            ctx.exit(128 + signum)
        except OSError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_FAILED)


def _naming_the_environment(ctx: click.Context,
                            exc: FederationDeployError) -> FederationDeployError:
    """A missing config directory that came from FEDERATION_DEPLOY_CONFIG_DIR says so: after
    `sandbox down`, an exported sandbox config dir is gone, and "use --config-dir" alone
    misleads (every command, `sandbox up` included)."""
    if not isinstance(exc, ConfigError) or \
            ctx.get_parameter_source("config_dir") is not ParameterSource.ENVIRONMENT:
        return exc
    message = ("config directory not found: it is FEDERATION_DEPLOY_CONFIG_DIR's "
               "(unset FEDERATION_DEPLOY_CONFIG_DIR, or use --config-dir)")
    return ConfigError([replace(p, message=message) if p.message == CONFIG_DIR_NOT_FOUND else p
                        for p in exc.problems])


def _set_log_level(verbosity: int) -> None:
    level = logging.ERROR if verbosity < 0 else (logging.DEBUG if verbosity > 1 else logging.INFO)
    logging.getLogger().setLevel(level)


def _more_verbose(ctx: click.Context, _param: click.Parameter, count: int) -> None:
    obj = ctx.find_object(Context)
    if count and obj is not None and obj.verbosity >= 0:  # -q anywhere wins
        obj.verbosity += count
        _set_log_level(obj.verbosity)


def _quiet(ctx: click.Context, _param: click.Parameter, quiet: bool) -> None:
    obj = ctx.find_object(Context)
    if quiet and obj is not None:
        obj.verbosity = -1
        _set_log_level(obj.verbosity)


def add_verbosity_options(command: click.Command) -> None:
    """-v/-q on a command (and every subcommand of a group), so that they work anywhere on the
    line (`deploy gke -q`) as well as before the command; they update the one Context."""
    names = {name for param in command.params for name in param.opts}
    if "--verbose" not in names:
        command.params.append(click.Option(
            ["-v", "--verbose"], count=True, expose_value=False, callback=_more_verbose,
            help="More output: tools' full output, helm --debug (repeatable; also before the "
                 "command)."))
    if "--quiet" not in names:
        command.params.append(click.Option(
            ["-q", "--quiet"], is_flag=True, expose_value=False, callback=_quiet,
            help="Only errors on stderr (also before the command)."))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbosity_options(sub)


@click.group(cls=FederationGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                    "auto_envvar_prefix": "FEDERATION_DEPLOY"})
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("config"),
    show_default=True,
    envvar="FEDERATION_DEPLOY_CONFIG_DIR",
    help="Directory holding federation.yaml, values/ and secrets/.",
)
@click.option("-v", "--verbose", count=True,
              help="More output on stderr: tools' full output, helm --debug (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.version_option(package_name="federation-deploy")
@click.pass_context
def cli(ctx: click.Context, config_dir: Path, verbose: int, quiet: bool) -> None:
    """Deploy and steer a BinderHub federation (mybinder.org) from one config.

    The federation lives in CONFIG_DIR/federation.yaml (members, clouds, releases, weights)
    and layered Helm values. Stdout carries data, stderr carries progress.

    Exit codes: 0 success; 1 an operation failed; 2 bad usage or invalid config;
    3 check/diff found drift or changes.
    """
    verbosity = -1 if quiet else verbose
    logging.basicConfig(format="%(message)s", stream=sys.stderr)
    _set_log_level(verbosity)
    ctx.obj = Context(config_dir=config_dir, verbosity=verbosity)


def _register() -> None:
    for name in COMMANDS:
        cli.add_lazy(name, name.replace("-", "_"))


_register()


def main() -> None:
    # SIGTERM (CI runners, `timeout`, systemd) as an exception like Ctrl-C, not instant death:
    # temporary kubeconfigs are removed, children stopped, config and published weights left
    # consistent by the same `finally` and `except KeyboardInterrupt` blocks. Installed for the
    # whole run (option parsing and config loading included), not only around the command.
    with sigterm_as_interrupt():
        cli(prog_name="federation-deploy")


if __name__ == "__main__":
    main()
