"""The GitHub API adapter's calls have a total deadline (issue 29, item 3): an API server (or a
stand-in of GitHub Enterprise) that trickles its answer fails the call at the timeout."""

from __future__ import annotations

import time

import pytest

from federation_deploy.actions import github_api
from federation_deploy.actions.github_api import GitHub, GitHubAPIError
from tests.helpers.serve import http_head, scripted, trickling


def test_a_trickling_api_fails_the_call_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(github_api, "TIMEOUT", 0.5)
    with trickling(b'[{"id": 1, "user": {"login": "x"}, "body": "hi"}]', interval=0.1) as url:
        api = GitHub("org/repo", "a-token", api_url=url)
        start = time.monotonic()
        with pytest.raises(GitHubAPIError, match=r"no complete answer within 0\.5s"):
            api.comments(1)
        assert time.monotonic() - start < 1.5


def test_a_prompt_api_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    with trickling(b'[{"id": 1, "user": {"login": "x"}, "body": "hi"}]', interval=0.0) as url:
        comments = GitHub("org/repo", "a-token", api_url=url).comments(1)
    assert [(c.id, c.author, c.body) for c in comments] == [(1, "x", "hi")]


# issue 29 re-trial: a huge answer, and an answer echoing our token (items 1 and 3)
ECHO = b'{"message": "Bad credentials: Authorization: Bearer a-token"}'


def test_a_huge_answer_is_refused_not_read() -> None:
    with scripted([(0.0, http_head(1024 ** 3))]) as url, \
            pytest.raises(GitHubAPIError, match="bytes accepted"):
        GitHub("org/repo", "a-token", api_url=url).comments(1)


def test_an_error_echoing_the_token_is_not_quoted() -> None:
    with scripted([(0.0, http_head(len(ECHO), status=401)), (0.0, ECHO)]) as url, \
            pytest.raises(GitHubAPIError) as caught:
        GitHub("org/repo", "a-token", api_url=url).comments(1)
    assert "a-token" not in str(caught.value) and "not shown" in str(caught.value)
