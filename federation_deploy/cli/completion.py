"""Click command `completion`: the shell completion script of federation-deploy (Click's)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
# Click's convention for a program called federation-deploy; the script sets it when asking
COMPLETE_VAR = "_FEDERATION_DEPLOY_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL: commands, options, member and release names.

    \b
    bash:  eval "$(federation-deploy completion bash)"   (in ~/.bashrc)
    zsh:   eval "$(federation-deploy completion zsh)"    (in ~/.zshrc)
    fish:  federation-deploy completion fish > ~/.config/fish/completions/federation-deploy.fish

    Member names come from the federation.yaml of --config-dir as typed on the line (or
    $FEDERATION_DEPLOY_CONFIG_DIR, or ./config), read without validating it.
    """
    cls = get_completion_class(shell)
    assert cls is not None  # every name in SHELLS is one Click ships
    root = ctx.find_root().command
    click.echo(cls(root, {}, "federation-deploy", COMPLETE_VAR).source())


COMMANDS: list[click.Command] = [completion]
