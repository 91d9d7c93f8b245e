"""The GitHub REST adapter: a repository's issues (list, open, edit, close, comment), with the
Actions token from the environment; the token never appears in a message."""

from __future__ import annotations

import json as _json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from federation_deploy.errors import FederationDeployError, UsageError
from federation_deploy.health import http
from federation_deploy.progress import answer_excerpt, kind_of_answer, redact_userinfo

DEFAULT_API_URL = "https://api.github.com"
TIMEOUT = 30.0


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    labels: tuple[str, ...]
    url: str


class GitHubError(FederationDeployError):
    """The GitHub API refused or failed a request (exit 1)."""


class GitHubIssues:
    """The issues of one repository ($GITHUB_REPOSITORY) at $GITHUB_API_URL."""

    def __init__(self, api_url: str, repository: str, token: str,
                 timeout: float = TIMEOUT) -> None:
        self.base = f"{api_url.rstrip('/')}/repos/{repository}"
        self.repository = repository
        self.timeout = timeout
        self._token = token
        self._headers = {"Authorization": f"Bearer {token}",
                         "Accept": "application/vnd.github+json",
                         "X-GitHub-Api-Version": "2022-11-28"}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> GitHubIssues:
        env = os.environ if environ is None else environ
        token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
        repository = env.get("GITHUB_REPOSITORY")
        missing = [name for name, value in (("GITHUB_TOKEN", token),
                                            ("GITHUB_REPOSITORY", repository)) if not value]
        if missing:
            raise UsageError(f"keeping GitHub issues needs {' and '.join(missing)} in the "
                             "environment (set by GitHub Actions: pass github.token as "
                             "GITHUB_TOKEN)")
        assert token and repository
        return cls(env.get("GITHUB_API_URL") or DEFAULT_API_URL, repository, token)

    def open_issues(self, label: str) -> list[Issue]:
        """Open issues (not pull requests) carrying label."""
        found: list[Issue] = []
        page = 1
        while True:
            items = self._request("GET", "/issues", params={
                "state": "open", "labels": label, "per_page": "100", "page": str(page)})
            if not isinstance(items, list):
                raise GitHubError(f"GET {self.base}/issues: expected a list")
            found += [_issue(i) for i in items
                      if isinstance(i, dict) and "pull_request" not in i]
            if len(items) < 100:
                return found
            page += 1

    def create(self, title: str, body: str, labels: list[str]) -> Issue:
        return _issue(self._request("POST", "/issues",
                                    json={"title": title, "body": body, "labels": labels}))

    def edit(self, number: int, **fields: Any) -> Issue:
        return _issue(self._request("PATCH", f"/issues/{number}", json=fields))

    def comment(self, number: int, body: str) -> None:
        self._request("POST", f"/issues/{number}/comments", json={"body": body})

    def _request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                 json: Any = None) -> Any:
        url = self.base + path
        shown = redact_userinfo(url)
        try:
            # health.http: the whole call within the timeout and a capped body (requests
            # alone let a trickling or a 1 GB answer hang or fill memory)
            response = http.request(method, url, self.timeout, headers=self._headers,
                                    params=params, json_body=json)
        except http.BodyTooLarge as exc:
            raise GitHubError(f"{method} {exc}") from None
        except requests.RequestException as exc:
            raise GitHubError(f"{method} {shown}: {type(exc).__name__}") from None
        if response.status >= 400:
            try:
                data = _json.loads(response.text)
                message = str(data.get("message", "")) if isinstance(data, dict) else ""
            except ValueError:
                message = ""
            # never quoted whole: a proxy echoing our request would print the token
            message = answer_excerpt(message, url, self._token) if message else ""
            raise GitHubError(f"{method} {shown}: HTTP {response.status} {message}".rstrip()
                              + (" (does the job have `issues: write`?)"
                                 if response.status in (401, 403) else ""))
        try:
            return _json.loads(response.text)
        except ValueError:
            raise GitHubError(f"{method} {shown}: HTTP {response.status}, not JSON") from None


def _issue(data: Any) -> Issue:
    if not isinstance(data, dict) or not isinstance(data.get("number"), int):
        raise GitHubError(f"unexpected issue in GitHub's answer: {kind_of_answer(data)}")
    labels = tuple(str(label.get("name") if isinstance(label, dict) else label)
                   for label in data.get("labels") or [])
    return Issue(number=data["number"], title=str(data.get("title") or ""),
                 body=str(data.get("body") or ""), labels=labels,
                 url=str(data.get("html_url") or ""))
