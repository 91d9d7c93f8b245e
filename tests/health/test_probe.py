"""verify against a real HTTP server on 127.0.0.1 with an injected clock."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.config import Member, load_federation
from federation_deploy.errors import VerificationError
from federation_deploy.health.probe import (
    Retry,
    check_health,
    check_versions,
    verify_member,
    with_retries,
)

HEALTHY = {"ok": True, "checks": [{"service": "Hub", "ok": True},
                                  {"service": "Pod quota", "ok": True, "quota": 300,
                                   "total_pods": 12}]}
VERSIONS = {"binderhub": "1.0.0-0.dev.git.3100.h1a2b3c4", "builder": "r2d-2023.06.0"}


class MemberServer(ThreadingHTTPServer):
    """A member stand-in: answers queued (status, body) per path, then its last answer."""

    daemon_threads = True
    answers: dict[str, list[tuple[int, str]]]
    hits: list[str]


class Handler(BaseHTTPRequestHandler):
    server: MemberServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.hits.append(self.path)
        queue = self.server.answers.get(self.path, [(404, "not found")])
        status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[MemberServer]:
    srv = MemberServer(("127.0.0.1", 0), Handler)
    srv.answers = {"/health": [(200, json.dumps(HEALTHY))],
                   "/versions": [(200, json.dumps(VERSIONS))]}
    srv.hits = []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def url(srv: MemberServer, path: str = "") -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


@pytest.fixture
def member(config_dir: Path, server: MemberServer) -> Member:
    gke = load_federation(config_dir).member("gke")
    return dataclasses.replace(gke, health_url=url(server, "/health"),
                               versions_url=url(server, "/versions"))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_healthy_member(member: Member, server: MemberServer) -> None:
    clock = FakeClock()
    result = verify_member(member, Retry(attempts=3, delay=5), sleep=clock.sleep, clock=clock)
    assert result.health == HEALTHY and result.versions == VERSIONS
    assert result.attempts == 2 and clock.sleeps == []
    assert server.hits == ["/health", "/versions"]


def test_retries_until_healthy(member: Member, server: MemberServer) -> None:
    sick = json.dumps({"ok": False, "checks": [{"service": "Hub", "ok": False}]})
    server.answers["/health"] = [(503, sick), (503, sick), (200, json.dumps(HEALTHY))]
    clock = FakeClock()
    result = verify_member(member, Retry(attempts=5, delay=7), sleep=clock.sleep, clock=clock)
    assert result.attempts == 4
    assert clock.sleeps == [7, 7]
    assert server.hits == ["/health"] * 3 + ["/versions"]


def test_failing_check_is_named_after_the_last_attempt(member: Member,
                                                       server: MemberServer) -> None:
    server.answers["/health"] = [(503, json.dumps({"ok": False, "checks": [
        {"service": "Hub", "ok": True}, {"service": "Pod quota", "ok": False}]}))]
    clock = FakeClock()
    with pytest.raises(VerificationError) as caught:
        verify_member(member, Retry(attempts=3, delay=2), sleep=clock.sleep, clock=clock)
    message = str(caught.value)
    assert message.startswith("stage 'verify' failed: member 'gke': unhealthy (HTTP 503 from ")
    assert "failing checks: Pod quota" in message and "Hub" not in message
    assert message.endswith("(gave up after 3 attempt(s), 2s apart)")
    assert clock.sleeps == [2, 2] and len(server.hits) == 3


def test_deadline_on_the_injected_clock_cuts_retries(member: Member, server: MemberServer) -> None:
    server.answers["/health"] = [(500, "{}")]
    clock = FakeClock()
    with pytest.raises(VerificationError):
        verify_member(member, Retry(attempts=100, delay=10, deadline=35), sleep=clock.sleep,
                      clock=clock)
    assert clock.sleeps == [10, 10, 10]


def test_ok_true_with_a_failing_check_is_unhealthy(server: MemberServer) -> None:
    server.answers["/health"] = [(200, json.dumps({"ok": True, "checks": [
        {"service": "Hub", "ok": True}, {"name": "registry", "ok": False}]}))]
    with pytest.raises(VerificationError, match="failing checks: registry"):
        check_health("m", url(server, "/health"))


def test_health_without_json(server: MemberServer) -> None:
    server.answers["/health"] = [(502, "<html>Bad gateway</html>")]
    with pytest.raises(VerificationError, match="answered HTTP 502 with no JSON"):
        check_health("m", url(server, "/health"))


def test_versions_must_be_an_object(server: MemberServer) -> None:
    server.answers["/versions"] = [(200, "[1, 2]")]
    with pytest.raises(VerificationError, match="did not answer a JSON object"):
        check_versions("m", url(server, "/versions"))
    server.answers["/versions"] = [(500, "{}")]
    with pytest.raises(VerificationError, match="answered HTTP 500"):
        check_versions("m", url(server, "/versions"))


def test_unreachable_member(server: MemberServer) -> None:
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(VerificationError, match=f"health http://127.0.0.1:{port}/health "
                                                "unreachable: connection refused"):
        check_health("m", f"http://127.0.0.1:{port}/health", timeout=2)


def test_with_retries_returns_attempts() -> None:
    calls = iter([VerificationError("a"), VerificationError("b"), "done"])

    def check() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    clock = FakeClock()
    assert with_retries(check, Retry(attempts=3, delay=1), sleep=clock.sleep,
                        clock=clock) == ("done", 3)


def cli_config(config_dir: Path, server: MemberServer) -> Path:
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text().replace("url: https://gke.mybinder.org",
                                             f"url: {url(server)}"))
    return config_dir


def test_cli_verify(config_dir: Path, server: MemberServer) -> None:
    config = cli_config(config_dir, server)
    result = CliRunner().invoke(cli, ["--config-dir", str(config), "verify", "gke",
                                      "--attempts", "1"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"member": "gke", "health": HEALTHY,
                                         "versions": VERSIONS}
    assert "verify: gke healthy (2 check(s) ok), versions: binderhub " in result.stderr


def test_cli_verify_unhealthy_exit_1(config_dir: Path, server: MemberServer) -> None:
    server.answers["/health"] = [(503, json.dumps({"ok": False, "checks": [
        {"service": "Docker registry", "ok": False}]}))]
    config = cli_config(config_dir, server)
    result = CliRunner().invoke(cli, ["--config-dir", str(config), "verify", "gke",
                                      "--attempts", "2", "--delay", "0"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error: stage 'verify' failed: member 'gke': unhealthy" in result.stderr
    assert "Docker registry" in result.stderr and "Traceback" not in result.stderr
    assert len(server.hits) == 2


def test_versions_must_equal_the_prime_versions(member: Member, server: MemberServer) -> None:
    server.answers["/prime-versions"] = [(200, json.dumps({**VERSIONS, "binderhub": "2.0.0"}))]
    with pytest.raises(VerificationError, match="differ from the prime's"):
        verify_member(member, Retry(attempts=1), prime_versions_url=url(server, "/prime-versions"))
    server.answers["/prime-versions"] = [(200, json.dumps(VERSIONS))]
    assert verify_member(member, Retry(attempts=1),
                         prime_versions_url=url(server, "/prime-versions")).versions == VERSIONS


def test_an_unreadable_prime_allows_the_member_its_own_versions(member: Member,
                                                                server: MemberServer) -> None:
    result = verify_member(member, Retry(attempts=1), prime_versions_url=url(server, "/nope"))
    assert result.versions == VERSIONS
