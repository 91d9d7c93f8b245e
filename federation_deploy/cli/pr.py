"""Click group `pr` (thin: parse options, call commands.pr, print)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands import pr as commands


@click.group()
def pr() -> None:
    """Pull requests through the GitHub API (for CI and CD).

    The token comes from GITHUB_TOKEN (never an option: it would show in the process list),
    the server from GITHUB_API_URL (default https://api.github.com), the repository from
    GITHUB_REPOSITORY unless --repo.
    """


@pr.command("comment")
@click.option("--body-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              required=True, help="The comment's markdown (`plan -o markdown` writes it).")
@click.option("--pr", "number", type=int, default=None,
              help="The pull request number. Default: the workflow event's pull request.")
@click.option("--repo", "repository", metavar="OWNER/NAME", default=None,
              help="Default: $GITHUB_REPOSITORY.")
@click.pass_obj
def comment(obj: Context, body_file: Path, number: int | None,
            repository: str | None) -> None:
    """Post the --body-file as the pull request's one plan comment, updated in place.

    The comment is found by its hidden marker line (<!-- federation-deploy plan -->) among
    the comments of github-actions[bot]; created when there is none. When the token may
    not comment on a pull request from a fork (its token is read-only), a note says where the
    plan is and the command still succeeds (CI puts the plan in the step summary itself); on
    a pull request of this repository that is an error (exit 1).
    """
    emit(obj, commands.comment(body_file, environ=os.environ, number=number,
                               repository=repository))


@pr.command("labels")
@click.argument("commit")
@click.option("--repo", "repository", metavar="OWNER/NAME", default=None,
              help="Default: $GITHUB_REPOSITORY.")
@click.pass_obj
def labels(obj: Context, commit: str, repository: str | None) -> None:
    """Print the labels of the merged pull request(s) COMMIT belongs to, one per line.

    CD skips a push whose pull request has the `deploy:skip` label.
    """
    emit(obj, commands.labels(commit, environ=os.environ, repository=repository))


COMMANDS: list[click.Command] = [pr]
