"""Command `pr`: the pull-request side of CI and CD through the GitHub API: one plan comment
updated in place (`pr comment`), and the labels of the pull request a pushed commit merged
(`pr labels`, for CD's `deploy:skip`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from federation_deploy.actions.github_api import DEFAULT_API_URL, GitHub, GitHubAPIError
from federation_deploy.commands.result import CommandResult
from federation_deploy.errors import UsageError
from federation_deploy.review.report import MARKER

# the author of the comments GITHUB_TOKEN writes: only those are updated, never a person's
# comment that happens to quote the marker
ACTIONS_BOT = "github-actions[bot]"
# GitHub refuses a comment body above 65536 characters
COMMENT_LIMIT = 65000


def _github(environ: Mapping[str, str], repository: str | None) -> GitHub:
    token = environ.get("GITHUB_TOKEN", "")
    if not token:
        raise UsageError("GITHUB_TOKEN is not set (in a workflow: env: GITHUB_TOKEN: "
                         "${{ github.token }})")
    repository = repository or environ.get("GITHUB_REPOSITORY", "")
    if repository.count("/") != 1:
        raise UsageError(f"--repo: expected OWNER/NAME, got {repository!r} (or set "
                         "GITHUB_REPOSITORY)")
    return GitHub(repository, token, environ.get("GITHUB_API_URL") or DEFAULT_API_URL)


def _event_pull_request(environ: Mapping[str, str]) -> dict[str, Any]:
    """The pull request of the workflow's event payload ($GITHUB_EVENT_PATH), or {}."""
    path = environ.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    pull = event.get("pull_request") if isinstance(event, dict) else None
    return pull if isinstance(pull, dict) else {}


def from_a_fork(environ: Mapping[str, str]) -> bool:
    """Whether the event's pull request comes from another repository than its base (only
    then is a read-only token expected). Unknown (no event): False."""
    pull = _event_pull_request(environ)

    def repo(side: str) -> Any:
        return ((pull.get(side) or {}).get("repo") or {}).get("full_name")

    head, base = repo("head"), repo("base") or environ.get("GITHUB_REPOSITORY")
    return bool(head and base and head != base)


def pull_request_number(environ: Mapping[str, str]) -> int:
    """The pull request of the running workflow, from its event payload ($GITHUB_EVENT_PATH)."""
    number = _event_pull_request(environ).get("number")
    if isinstance(number, int):
        return number
    raise UsageError("--pr: no pull request number given and the workflow event "
                     "($GITHUB_EVENT_PATH) names none")


def comment(body_file: Path, *, environ: Mapping[str, str], number: int | None = None,
            repository: str | None = None, marker: str = MARKER,
            author: str = ACTIONS_BOT) -> CommandResult:
    """Post body_file as the pull request's one comment carrying marker: update the comment
    author wrote with it before, else create it. A token that may not write is no failure
    for a pull request from a fork (its token is read-only): a note says where the plan is
    (body_file; CI puts the plan itself in the step summary, once). For a pull request of
    this repository it is an error."""
    full = body_file.read_text(encoding="utf-8")
    if marker not in full:
        full = f"{marker}\n{full}"
    body = fitting(full)
    summary = None
    if body != full:
        summary = (f"The plan ({len(full)} characters) is longer than one comment takes: the "
                   f"comment is cut; the whole plan is {body_file} (CI: the `plan` artifact).")
    github = _github(environ, repository)
    number = number if number is not None else pull_request_number(environ)
    try:
        mine = next((c for c in github.comments(number)
                     if c.author == author and c.body.startswith(marker)), None)
        if mine is None:
            created = github.create_comment(number, body)
            message = f"commented on #{number} (comment {created.id})"
        elif mine.body == body:
            message = f"comment {mine.id} on #{number} is up to date"
        else:
            github.update_comment(mine.id, body)
            message = f"updated comment {mine.id} on #{number}"
    except GitHubAPIError as exc:
        if not exc.forbidden or not from_a_fork(environ):
            # a pull request of this repository whose token may not comment: the workflow's
            # permissions are wrong, and nobody would see the plan
            raise
        note = (f"The plan could not be posted on #{number}: {exc} (a pull request from a "
                f"fork gets a read-only token). The plan is {body_file} (CI: this job's "
                "summary and the `plan` artifact).")
        return CommandResult(messages=(f"warning: {note}",), summary=note)
    return CommandResult(messages=(message,), summary=summary)


def fitting(body: str, limit: int = COMMENT_LIMIT) -> str:
    """body cut to what GitHub takes in one comment, at a line, saying where the rest is (the
    job's step summary, which takes a megabyte). Open <details> are closed."""
    if len(body) <= limit:
        return body
    note = ("\n\n**The plan is longer than one comment takes: the whole plan is the job's "
            "`plan` artifact (and its step summary, up to a megabyte).**\n")
    cut = body[: limit - len(note) - 200].rsplit("\n", 1)[0]
    unclosed = cut.count("<details>") - cut.count("</details>")
    return cut + "\n\n</details>" * unclosed + note


def labels(commit: str, *, environ: Mapping[str, str],
           repository: str | None = None) -> CommandResult:
    """The labels of the merged pull requests commit belongs to, one per line (none: no
    output), for CD to honour `deploy:skip`."""
    if not commit or commit.startswith("-"):
        raise UsageError(f"{commit!r} is not a commit")
    github = _github(environ, repository)
    pulls = [p for p in github.pull_requests_of_commit(commit) if p.get("merged_at")]
    names = list(dict.fromkeys(str(label.get("name", "")) for p in pulls
                               for label in p.get("labels") or ()))
    numbers = ", ".join(f"#{p.get('number')}" for p in pulls) or "no merged pull request"
    return CommandResult(stdout="".join(f"{n}\n" for n in names),
                         messages=(f"{commit[:12]}: {numbers}",))
