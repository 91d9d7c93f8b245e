"""The GitHub REST adapter: a repository's issues (list, open, edit, close, comment), with the
Actions token from the environment; the token never appears in a message."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from federation_deploy.errors import FederationDeployError, UsageError

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

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = self.base + path
        try:
            response = requests.request(method, url, headers=self._headers,
                                        timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise GitHubError(f"{method} {url}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("message", "")
            except ValueError:
                message = ""
            raise GitHubError(f"{method} {url}: HTTP {response.status_code} {message}".rstrip()
                              + (" (does the job have `issues: write`?)"
                                 if response.status_code in (401, 403) else ""))
        try:
            return response.json()
        except ValueError:
            raise GitHubError(f"{method} {url}: HTTP {response.status_code}, not JSON") from None


def _issue(data: Any) -> Issue:
    if not isinstance(data, dict) or not isinstance(data.get("number"), int):
        raise GitHubError(f"unexpected issue in GitHub's answer: {str(data)[:200]}")
    labels = tuple(str(label.get("name") if isinstance(label, dict) else label)
                   for label in data.get("labels") or [])
    return Issue(number=data["number"], title=str(data.get("title") or ""),
                 body=str(data.get("body") or ""), labels=labels,
                 url=str(data.get("html_url") or ""))
