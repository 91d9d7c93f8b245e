"""Root Click group, global options and the one place errors become messages and exit codes."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import EXIT_FAILED, ConfigError, FederationDeployError
from .context import Context
from .github import annotation_lines, in_github_actions
from .params import SuggestingGroup

# command name -> the cli module defining it; imported only when the command runs (or for
# --help), so `federation-deploy terraform plan` does not pay for pyhelm3 and tornado
COMMAND_MODULES: dict[str, str] = {
    "validate": "core",
    "members": "core",
    "render": "core",
    "terraform": "terraform",
    "deploy": "deploy",
    "diff": "deploy",
    "verify": "deploy",
    "traffic": "traffic",
    "ramp": "traffic",
    "redirector": "redirector",
    "ci-matrix": "workflows",
    "sandbox": "sandbox",
    "schema": "core",
    "completion": "shell",
}


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
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FederationDeployError as exc:
            click.echo(f"error: {exc.render()}", err=True)
            if isinstance(exc, ConfigError) and in_github_actions():
                # workflow commands are read from stdout, which has no data after an error
                for line in annotation_lines(exc.problems):
                    click.echo(line)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except OSError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_FAILED)


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
@click.option("-v", "--verbose", count=True, help="More progress on stderr (repeatable).")
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
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    ctx.obj = Context(config_dir=config_dir, verbosity=-1 if quiet else verbose)


def _register() -> None:
    for name, module in COMMAND_MODULES.items():
        cli.add_lazy(name, module)


_register()


def main() -> None:
    cli(prog_name="federation-deploy")


if __name__ == "__main__":
    main()
