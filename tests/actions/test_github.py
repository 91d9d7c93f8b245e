"""The issues adapter (actions/github.py) against real servers on 127.0.0.1: its calls go
through health.http (a total deadline, a capped body) and its errors never quote the token
(issue 29 re-trial, items 1 and 3)."""

from __future__ import annotations

import pytest

from federation_deploy.actions.github import GitHubError, GitHubIssues
from tests.helpers.serve import http_head, scripted

TOKEN = "ghs_s3cretTOKEN"


def test_a_huge_answer_is_refused_not_read() -> None:
    with scripted([(0.0, http_head(1024 ** 3))]) as url:
        issues = GitHubIssues(url.replace("http://", "http://u:PASS@"), "org/repo", TOKEN,
                              timeout=10)
        with pytest.raises(GitHubError) as caught:
            issues.open_issues("drift")
    message = str(caught.value)
    assert "bytes accepted" in message and "PASS" not in message and "***@" in message


def test_an_error_echoing_the_token_is_not_quoted() -> None:
    echo = f'{{"message": "Bad credentials (Authorization: Bearer {TOKEN})"}}'.encode()
    with scripted([(0.0, http_head(len(echo), status=401)), (0.0, echo)]) as url, \
            pytest.raises(GitHubError) as caught:
        GitHubIssues(url, "org/repo", TOKEN, timeout=10).open_issues("drift")
    message = str(caught.value)
    assert TOKEN not in message and "HTTP 401" in message and "issues: write" in message


def test_a_short_error_is_said() -> None:
    answer = b'{"message": "Not Found"}'
    with scripted([(0.0, http_head(len(answer), status=404)), (0.0, answer)]) as url, \
            pytest.raises(GitHubError, match="HTTP 404 Not Found"):
        GitHubIssues(url, "org/repo", TOKEN, timeout=10).open_issues("drift")


def test_issues_are_listed() -> None:
    answer = (b'[{"number": 3, "title": "t", "body": "b", "labels": [{"name": "drift"}],'
              b' "html_url": "u"}]')
    with scripted([(0.0, http_head(len(answer))), (0.0, answer)]) as url:
        found = GitHubIssues(url, "org/repo", TOKEN, timeout=10).open_issues("drift")
    assert [(i.number, i.labels) for i in found] == [(3, ("drift",))]
