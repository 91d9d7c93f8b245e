"""The drift workflow's issues, kept through the real CLI against a stand-in of the GitHub
REST API on 127.0.0.1 (GITHUB_API_URL): opened, updated, left, closed; never a token or a
value in them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands.drift import MemberDrift, PartReport, report_json

TOKEN = "ghs_t0ken-that-must-never-show"
REPO_PATH = "/repos/example/deploy"


class GitHubStandIn:
    """Issues of one repository, as much of the REST API as the keeper uses."""

    def __init__(self) -> None:
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: list[tuple[int, str]] = []
        self.requests: list[tuple[str, str]] = []
        self.refuse = False
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, data: Any) -> None:
                body = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                stand_in.requests.append((method, parts.path))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}" or stand_in.refuse:
                    self._answer(403, {"message": "Resource not accessible by integration"})
                    return
                rest = parts.path.removeprefix(REPO_PATH + "/issues")
                if method == "GET" and rest == "":
                    query = parse_qs(parts.query)
                    label = query["labels"][0]
                    found = [i for i in stand_in.issues.values() if i["state"] == "open"
                             and label in [x["name"] for x in i["labels"]]]
                    self._answer(200, found)
                elif method == "POST" and rest == "":
                    data = self._body()
                    number = len(stand_in.issues) + 1
                    stand_in.issues[number] = {
                        "number": number, "title": data["title"], "body": data["body"],
                        "state": "open", "labels": [{"name": n} for n in data["labels"]],
                        "html_url": f"https://github.example/issues/{number}"}
                    self._answer(201, stand_in.issues[number])
                elif method == "PATCH":
                    issue = stand_in.issues[int(rest.strip("/"))]
                    issue.update(self._body())
                    self._answer(200, issue)
                elif method == "POST" and rest.endswith("/comments"):
                    number = int(rest.split("/")[1])
                    stand_in.comments.append((number, self._body()["body"]))
                    self._answer(201, {"id": 1})
                else:
                    self._answer(404, {"message": "Not Found"})

            def do_GET(self) -> None:  # noqa: N802 - http.server's names
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_PATCH(self) -> None:  # noqa: N802
                self._handle("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    stand_in = GitHubStandIn()
    yield stand_in
    stand_in.stop()


def report(tmp_path: Path, **statuses: tuple[str, list[str]]) -> Path:
    """A `drift -o json` report: {member: (helm status, helm findings)}."""
    members = [MemberDrift(name, [
        PartReport("terraform", "clean", "No changes."),
        PartReport("helm", status, "4 release(s)" if status != "not checked" else "no access",
                   findings),
        PartReport("weights", "clean", "weight 60")]) for name, (status, findings) in
        statuses.items()]
    path = tmp_path / "drift.json"
    path.write_text(json.dumps(report_json(members)))
    return path


def keep(config_dir: Path, github: GitHubStandIn, path: Path,
         token: str = TOKEN) -> tuple[int, str, str]:
    env = {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": "example/deploy",
           "GITHUB_TOKEN": token}
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "drift", "--report",
                                      str(path), "--github-issue"], env=env)
    assert TOKEN not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_opened_updated_left_and_closed(config_dir: Path, github: GitHubStandIn,
                                        tmp_path: Path) -> None:
    first = ["binderhub: values differ from render at config.GitHubRepoProvider.access_token"]
    code, out, err = keep(config_dir, github, report(
        tmp_path, gke=("drift", first), ovh2=("clean", [])))
    assert code == 3, err
    assert "gke: drift issue #1 opened" in err and "ovh2: clean, no drift issue open" in err
    issue = github.issues[1]
    assert issue["title"] == "Drift on member gke"
    assert [x["name"] for x in issue["labels"]] == ["drift"]
    assert issue["body"].startswith("<!-- federation-deploy drift: gke -->\n")
    assert "| helm | drift | 4 release(s) |" in issue["body"]
    assert "- binderhub: values differ from render at config.GitHubRepoProvider.access_token" \
        in issue["body"]

    # the same drift again: nothing to write; then other drift: the body is edited
    code, _, err = keep(config_dir, github, report(tmp_path, gke=("drift", first)))
    assert "gke: drift issue #1 already says this" in err
    assert ("PATCH", f"{REPO_PATH}/issues/1") not in github.requests
    second = [*first, "ingress-nginx: status pending-upgrade (revision 7)"]
    code, _, err = keep(config_dir, github, report(tmp_path, gke=("drift", second)))
    assert "gke: drift issue #1 updated" in err
    assert "pending-upgrade" in github.issues[1]["body"] and len(github.issues) == 1

    # a person retitles it: still found by its label and marker
    github.issues[1]["title"] = "gke drifts (looking into it)"
    code, _, err = keep(config_dir, github, report(tmp_path, gke=("not checked", [])))
    assert code == 1
    assert "gke: not everything could be checked: drift issue #1 left as it is" in err
    assert github.issues[1]["state"] == "open"

    code, _, err = keep(config_dir, github, report(tmp_path, gke=("clean", [])))
    assert code == 0, err
    assert "gke: clean, drift issue #1 closed" in err
    assert github.issues[1]["state"] == "closed"
    assert github.comments == [(1, "`federation-deploy drift gke` finds no drift any more: "
                                   "closing.")]
    # drift again later: a new issue (the closed one stays closed)
    keep(config_dir, github, report(tmp_path, gke=("drift", first)))
    assert github.issues[2]["state"] == "open" and len(github.issues) == 2


def test_a_partial_report_neither_closes_nor_rewrites_an_issue(
        config_dir: Path, github: GitHubStandIn, tmp_path: Path) -> None:
    first = ["binderhub: values differ from render at config.GitHubRepoProvider.access_token"]
    keep(config_dir, github, report(tmp_path, gke=("drift", first)))
    body = github.issues[1]["body"]
    # `drift --part weights`: terraform and helm skipped, weights clean
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(report_json([MemberDrift("gke", [
        PartReport("terraform", "skipped", "not asked (--part)"),
        PartReport("helm", "skipped", "not asked (--part)"),
        PartReport("weights", "clean", "weight 60")])])))
    code, _, err = keep(config_dir, github, partial)
    assert code == 0, err
    assert "gke: a partial report (--part): drift issue #1 left as it is" in err
    assert github.issues[1]["state"] == "open" and github.issues[1]["body"] == body
    assert github.comments == []
    # a partial report finding drift where no issue is open opens one
    partial.write_text(json.dumps(report_json([MemberDrift("ovh2", [
        PartReport("terraform", "skipped", "not asked (--part)"),
        PartReport("helm", "drift", "1 release(s)", first),
        PartReport("weights", "skipped", "not asked (--part)")])])))
    code, _, err = keep(config_dir, github, partial)
    assert code == 3 and "ovh2: drift issue #2 opened" in err
    # a full clean report closes gke's
    keep(config_dir, github, report(tmp_path, gke=("clean", [])))
    assert github.issues[1]["state"] == "closed"


def test_a_refused_token_is_an_error_naming_the_permission(config_dir: Path,
                                                           github: GitHubStandIn,
                                                           tmp_path: Path) -> None:
    github.refuse = True
    code, _, err = keep(config_dir, github, report(tmp_path, gke=("drift", ["x"])))
    assert code == 1
    assert "HTTP 403 Resource not accessible by integration" in err
    assert "issues: write" in err


def test_without_the_environment_it_says_what_is_missing(config_dir: Path,
                                                         tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "drift", "--report",
                                      str(report(tmp_path, gke=("drift", ["x"]))),
                                      "--github-issue"],
                                env={"GITHUB_TOKEN": None, "GH_TOKEN": None,
                                     "GITHUB_REPOSITORY": None})
    assert result.exit_code == 2
    assert "needs GITHUB_TOKEN and GITHUB_REPOSITORY" in result.stderr


def test_a_file_that_is_not_a_report_is_refused(config_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"members": "gke"}')
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "drift", "--report",
                                      str(bad)])
    assert result.exit_code == 2
    assert f"{bad}" in result.stderr and "not a drift report" in result.stderr


def test_a_report_needs_no_config(tmp_path: Path) -> None:
    # drift.yml's issues job has a checkout without unlocked secrets: nothing is loaded
    path = report(tmp_path, gke=("clean", []))
    result = CliRunner().invoke(cli, ["--config-dir", str(tmp_path / "absent"), "drift",
                                      "--report", str(path)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1].split() == ["gke", "clean", "clean", "clean", "clean"]
