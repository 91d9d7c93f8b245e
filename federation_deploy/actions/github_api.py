"""The GitHub REST API adapter: a pull request's comments (find, create, update) and the pull
requests and labels of a commit. The token is sent in a header only, never logged or echoed;
GITHUB_API_URL (GitHub Enterprise, or a stand-in in tests) chooses the server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from federation_deploy.errors import FederationDeployError
from federation_deploy.health import http
from federation_deploy.progress import answer_excerpt

DEFAULT_API_URL = "https://api.github.com"
TIMEOUT = 30.0
PAGE = 100


class GitHubAPIError(FederationDeployError):
    """A GitHub API call answered with an error status (or not at all)."""

    def __init__(self, what: str, status: int | None, detail: str) -> None:
        self.status = status
        self.what = what
        super().__init__(f"GitHub API: {what} failed"
                         + (f" (HTTP {status})" if status is not None else "") + f": {detail}")

    @property
    def forbidden(self) -> bool:
        """The token may not do this: a pull request from a fork gets a read-only token."""
        return self.status in (401, 403, 404)


@dataclass(frozen=True)
class Comment:
    id: int
    author: str
    body: str


@dataclass(frozen=True)
class GitHub:
    """One repository on one API server, with one token."""

    repository: str  # owner/name
    token: str
    api_url: str = DEFAULT_API_URL

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        url = f"{self.api_url.rstrip('/')}/repos/{self.repository}{path}"
        headers = {"Accept": "application/vnd.github+json",
                   "Authorization": f"Bearer {self.token}",
                   "X-GitHub-Api-Version": "2022-11-28"}
        try:
            # the whole call within TIMEOUT (health.http): a server that trickles its answer
            # is given up on, never waited for
            response = http.request(method, url, TIMEOUT, headers=headers,
                                    params=kwargs.get("params"), json_body=kwargs.get("json"))
        except (http.DeadlineExceeded, http.BodyTooLarge) as exc:
            raise GitHubAPIError(what, None, str(exc)) from None
        except requests.RequestException as exc:
            raise GitHubAPIError(what, None, type(exc).__name__) from None
        if response.status >= 400:
            try:
                body = json.loads(response.text)
                detail = str(body.get("message", "")) if isinstance(body, dict) else ""
            except ValueError:
                detail = response.text
            # never quoted whole: a proxy echoing our request would print the token
            detail = answer_excerpt(detail, url, self.token) if detail else ""
            raise GitHubAPIError(what, response.status, detail or f"HTTP {response.status}")
        try:
            return json.loads(response.text) if response.content else None
        except ValueError:
            raise GitHubAPIError(what, response.status, "the answer is not JSON") from None

    def _pages(self, path: str, what: str) -> Iterator[Any]:
        page = 1
        while True:
            items = self._call("GET", path, what, params={"per_page": PAGE, "page": page})
            if not isinstance(items, list):
                raise GitHubAPIError(what, None, "expected a list")
            yield from items
            if len(items) < PAGE:
                return
            page += 1

    def comments(self, number: int) -> list[Comment]:
        """Every comment of issue or pull request number, oldest first."""
        return [Comment(int(c["id"]), str((c.get("user") or {}).get("login", "")),
                        str(c.get("body") or ""))
                for c in self._pages(f"/issues/{number}/comments",
                                     f"listing the comments of #{number}")]

    def create_comment(self, number: int, body: str) -> Comment:
        data = self._call("POST", f"/issues/{number}/comments", f"commenting on #{number}",
                          json={"body": body})
        return Comment(int(data["id"]), str((data.get("user") or {}).get("login", "")), body)

    def update_comment(self, comment_id: int, body: str) -> None:
        self._call("PATCH", f"/issues/comments/{comment_id}",
                   f"updating comment {comment_id}", json={"body": body})

    def pull_requests_of_commit(self, sha: str) -> list[dict[str, Any]]:
        """The pull requests a commit belongs to (a merge commit: the merged one)."""
        found = self._call("GET", f"/commits/{sha}/pulls",
                           f"finding the pull requests of {sha[:12]}")
        return found if isinstance(found, list) else []
