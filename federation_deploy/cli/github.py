"""GitHub Actions integration: config errors as ::error annotations on the file and line, and
command summaries (markdown) appended to $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import click

from federation_deploy.errors import Problem
from federation_deploy.progress import redact_userinfo


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


def _escape_data(text: str) -> str:
    # the runner's own escaping rules for workflow commands (a newline would end the command)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(problem: Problem, title: str = "invalid config") -> str:
    """One `::error file=...,line=...,title=...::message` workflow command for a problem."""
    props = [f"file={_escape_property(problem.file)}"]
    if problem.line is not None:
        props.append(f"line={problem.line}")
    heading = f"{title}: {problem.key}" if problem.key else title
    props.append(f"title={_escape_property(heading)}")
    return f"::error {','.join(props)}::{_escape_data(problem.message)}"


def annotation_lines(problems: Iterable[Problem]) -> list[str]:
    return [annotation(p) for p in problems]


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> bool:
    """Append markdown to the job's summary when running under GitHub Actions (the one writer
    of it); False when there is none to append to (not in Actions, or no $GITHUB_STEP_SUMMARY)
    or it cannot be written (then a warning on stderr)."""
    env = os.environ if environ is None else environ
    path = env.get("GITHUB_STEP_SUMMARY")
    if not in_github_actions(env) or not path:
        return False
    # a job's page is read by anyone who can read the repository: never a URL's credentials
    markdown = redact_userinfo(markdown)
    try:
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as exc:
        # written after the command's work (a ramp's weights are live): a summary that cannot
        # be written is a warning, never the command's failure (issue 29)
        click.echo(f"warning: the job summary ($GITHUB_STEP_SUMMARY) was not written "
                   f"({exc.strerror or type(exc).__name__}); the result above stands", err=True)
        return False
    return True
