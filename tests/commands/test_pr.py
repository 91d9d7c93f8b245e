"""pr comment / pr labels against a stand-in of the GitHub API on 127.0.0.1 (GITHUB_API_URL
points there): the plan comment is created once, then updated in place; a fork's read-only
token falls back to the step summary; CD reads a merged pull request's labels."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.review.report import MARKER

TOKEN = "ghs_stand-in-token-0123456789"
REPO = "jupyterhub/mybinder.org-deploy"


@dataclass
class StandIn:
    """The state of the stand-in API: comments per issue, pull requests per commit, and
    whether the token may write (a fork's pull request: it may not)."""

    url: str = ""
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    writable: bool = True
    requests: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 1000


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    prefix = f"/repos/{REPO}"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _send(self, status: int, data: Any) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _route(self, method: str) -> None:
            path, _, query = self.path.partition("?")
            state.requests.append((method, path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"message": "Bad credentials"})
            if not path.startswith(prefix):
                return self._send(404, {"message": "Not Found"})
            path = path[len(prefix):]
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length)) if length else None
            if method in ("POST", "PATCH") and not state.writable:
                return self._send(403, {"message": "Resource not accessible by integration"})
            if m := re.fullmatch(r"/issues/(\d+)/comments", path):
                comments = state.comments.setdefault(int(m[1]), [])
                if method == "GET":
                    page = int(dict(p.split("=") for p in query.split("&")).get("page", "1"))
                    return self._send(200, comments[(page - 1) * 100: page * 100])
                state.next_id += 1
                new = {"id": state.next_id, "user": {"login": "github-actions[bot]",
                                                     "type": "Bot"}, "body": payload["body"]}
                comments.append(new)
                return self._send(201, new)
            if (m := re.fullmatch(r"/issues/comments/(\d+)", path)) and method == "PATCH":
                for comments in state.comments.values():
                    for c in comments:
                        if c["id"] == int(m[1]):
                            c["body"] = payload["body"]
                            return self._send(200, c)
            if (m := re.fullmatch(r"/commits/(\w+)/pulls", path)) and method == "GET":
                return self._send(200, state.pulls.get(m[1], []))
            return self._send(404, {"message": "Not Found"})

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

        def do_PATCH(self) -> None:  # noqa: N802
            self._route("PATCH")

    return Handler


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StandIn]:
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    summary = tmp_path / "summary.md"
    summary.write_text("")
    for name, value in {"GITHUB_API_URL": state.url, "GITHUB_TOKEN": TOKEN,
                        "GITHUB_REPOSITORY": REPO, "GITHUB_EVENT_PATH": str(event),
                        "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}.items():
        monkeypatch.setenv(name, value)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["pr", *args])
    return result.exit_code, result.stdout, result.stderr


def body(tmp_path: Path, text: str) -> str:
    path = tmp_path / "plan.md"
    path.write_text(f"{MARKER}\n## federation-deploy plan\n\n{text}\n")
    return str(path)


def test_created_once_then_updated_in_place(github: StandIn, tmp_path: Path) -> None:
    github.comments[7] = [{"id": 1, "user": {"login": "a-person"}, "body": f"{MARKER} quoted"}]
    code, _, err = run("comment", "--body-file", body(tmp_path, "first push"))
    assert code == 0, err
    assert "commented on #7" in err
    mine = [c for c in github.comments[7] if c["user"]["login"] == "github-actions[bot]"]
    assert len(mine) == 1 and "first push" in mine[0]["body"]
    code, _, err = run("comment", "--body-file", body(tmp_path, "second push"))
    assert code == 0, err
    assert f"updated comment {mine[0]['id']} on #7" in err
    assert len(github.comments[7]) == 2  # no new comment; a person's quote left alone
    assert "second push" in github.comments[7][1]["body"]
    assert github.comments[7][0]["body"] == f"{MARKER} quoted"
    code, _, err = run("comment", "--body-file", body(tmp_path, "second push"))
    assert "is up to date" in err and ("PATCH", f"/repos/{REPO}/issues/comments/1001") \
        not in github.requests[-1:]


def test_the_comment_is_found_beyond_the_first_page(github: StandIn, tmp_path: Path) -> None:
    github.comments[7] = [{"id": i, "user": {"login": "a-person"}, "body": "chatter"}
                          for i in range(150)]
    github.comments[7].append({"id": 555, "user": {"login": "github-actions[bot]"},
                               "body": f"{MARKER}\nold"})
    code, _, err = run("comment", "--body-file", body(tmp_path, "new"), "--pr", "7")
    assert code == 0, err
    assert "updated comment 555" in err and len(github.comments[7]) == 151


def fork_event(tmp_path: Path, head: str) -> None:
    (tmp_path / "event.json").write_text(json.dumps({"pull_request": {
        "number": 7, "head": {"repo": {"full_name": head}},
        "base": {"repo": {"full_name": REPO}}}}))


def test_a_forks_read_only_token_leaves_a_note_not_a_second_plan(github: StandIn,
                                                                 tmp_path: Path) -> None:
    fork_event(tmp_path, "someone/fork")
    github.writable = False
    code, _, err = run("comment", "--body-file", body(tmp_path, "from a fork"))
    assert code == 0, err
    assert "could not be posted on #7" in err and "HTTP 403" in err
    assert f"The plan is {tmp_path / 'plan.md'}" in err  # says where it is
    summary = Path(tmp_path / "summary.md").read_text()
    assert "a pull request from a fork gets a read-only token" in summary
    # ci.yml writes the plan to the summary itself: not twice
    assert "from a fork\n" not in summary and github.comments[7] == []
    assert TOKEN not in err + summary


@pytest.mark.parametrize("same_repository", [True, False])
def test_a_forbidden_comment_on_this_repositorys_pull_request_fails(
        github: StandIn, tmp_path: Path, same_repository: bool) -> None:
    if same_repository:
        fork_event(tmp_path, REPO)  # else: the event names no head repository (unknown)
    github.writable = False
    code, _, err = run("comment", "--body-file", body(tmp_path, "ours"))
    assert code == 1 and "HTTP 403" in err and "could not be posted" not in err


def test_another_api_error_fails(github: StandIn, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:1")  # nothing listens
    code, _, err = run("comment", "--body-file", body(tmp_path, "x"))
    assert code == 1 and "GitHub API: listing the comments of #7 failed" in err


def test_no_token_is_a_usage_error(github: StandIn, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    code, _, err = run("comment", "--body-file", body(tmp_path, "x"))
    assert code == 2 and "GITHUB_TOKEN is not set" in err


def test_labels_of_the_merged_pull_request(github: StandIn) -> None:
    sha = "a" * 40
    github.pulls[sha] = [
        {"number": 12, "merged_at": "2026-01-01T00:00:00Z",
         "labels": [{"name": "deploy:skip"}, {"name": "docs"}]},
        {"number": 13, "merged_at": None, "labels": [{"name": "deploy:staging"}]},
    ]
    code, out, err = run("labels", sha)
    assert code == 0, err
    assert out == "deploy:skip\ndocs\n" and f"{sha[:12]}: #12" in err
    code, out, _ = run("labels", "b" * 40)
    assert code == 0 and out == ""


def test_a_plan_too_long_for_one_comment_is_cut_and_whole_in_the_summary(
        github: StandIn, tmp_path: Path) -> None:
    rows = "\n".join(f"| <code>key{i}</code> | <code>{i}</code> | <code>{i + 1}</code> |"
                     for i in range(3000))
    code, _, err = run("comment", "--body-file",
                       body(tmp_path, f"<details><summary>big</summary>\n\n{rows}\n</details>"))
    assert code == 0, err
    posted = github.comments[7][0]["body"]
    assert len(posted) <= 65000 and posted.startswith(MARKER)
    assert posted.count("<details>") == posted.count("</details>")
    assert "the whole plan is the job's `plan` artifact" in posted
    summary = Path(tmp_path / "summary.md").read_text()
    assert "key2999" not in summary  # ci.yml puts the plan there (capped), once
    assert f"the whole plan is {tmp_path / 'plan.md'}" in summary
