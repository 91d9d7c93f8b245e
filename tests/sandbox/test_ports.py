"""Readiness means *our* process answers: on a shared machine another process (another user's
moto_server, any server) can take the port free_port() released before our child binds it, and
the sandbox or the tests would then talk to it (issue 30). A decoy server holds the port."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from federation_deploy.runner import Runner
from federation_deploy.sandbox import federation as sandbox_federation
from federation_deploy.sandbox import processes
from federation_deploy.sandbox.federation import Sandbox
from federation_deploy.sandbox.processes import (
    PortTaken,
    free_port,
    listener_is_ours,
    stop_process_groups,
    wait_for_http,
)
from tests.helpers import moto

pytestmark = pytest.mark.slow  # real servers started and stopped


class Decoy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def decoy() -> Iterator[int]:
    """Someone else's server on 127.0.0.1 (in this test process: never our child's)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Decoy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def ports_from(*first: int) -> Iterator[int]:
    """free_port() that hands out `first` (the decoy's port) before really free ones."""
    yield from first
    while True:
        yield free_port()


def test_a_decoy_on_our_port_is_not_taken_for_our_server(decoy: int, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    process = spawn(http_server(decoy), log)  # cannot bind: the decoy holds the port
    try:
        assert listener_is_ours(process.pid, decoy) in (False, None)
        with pytest.raises(PortTaken, match="answered by another process"):
            wait_for_http(f"http://127.0.0.1:{decoy}/", 30, process, log)
    finally:
        stop_process_groups([process.pid])


def test_our_own_server_is_ready(tmp_path: Path) -> None:
    port = free_port()
    process = spawn(http_server(port), tmp_path / "server.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", 30, process, tmp_path / "server.log")
        if Path("/proc/net/tcp").exists():
            assert listener_is_ours(process.pid, port) is True
    finally:
        stop_process_groups([process.pid])


def test_without_proc_an_exited_process_means_the_answer_is_not_ours(
        decoy: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS: no /proc/net; the answer counts only while our process still runs."""
    monkeypatch.setattr(processes, "_listening_inodes", lambda port: None)
    log = tmp_path / "server.log"
    process = spawn(http_server(decoy), log)
    process.wait(timeout=30)  # it failed to bind and exited
    with pytest.raises(PortTaken):
        wait_for_http(f"http://127.0.0.1:{decoy}/", 30, process, log)
    port = free_port()
    ours = spawn(http_server(port), log)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", 30, ours, log)
    finally:
        stop_process_groups([ours.pid])


def test_the_sandbox_retries_on_a_fresh_port_when_its_port_was_taken(
        decoy: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ports = ports_from(decoy)
    monkeypatch.setattr(sandbox_federation, "free_port", lambda: next(ports))
    said: list[str] = []
    root = tmp_path / "sandbox"
    root.mkdir()
    sandbox = Sandbox(tmp_path / "config", root, Runner(echo=False), said.append)
    try:
        service = sandbox.spawn("member-x", http_server, "/")
        assert service.url != f"http://127.0.0.1:{decoy}"
        assert [s.url for s in sandbox.state.services] == [service.url]
        assert any(f"port {decoy} was taken by another process" in line for line in said), said
        with urllib.request.urlopen(service.url, timeout=5) as response:
            assert b"Directory listing" in response.read()  # http.server's page, not the decoy's
    finally:
        stop_process_groups([s.pid for s in sandbox.state.services])


def test_a_chosen_redirector_port_held_by_another_process_is_refused(
        decoy: int, tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    root.mkdir()
    sandbox = Sandbox(tmp_path / "config", root, Runner(echo=False), lambda line: None)
    with pytest.raises(PortTaken):
        sandbox.spawn("redirector", http_server, "/", port=decoy)
    assert sandbox.state.services == []


@pytest.mark.skipif(moto.moto_server_binary() is None, reason="moto_server not installed")
def test_the_tests_moto_server_is_ours_not_a_decoy(
        decoy: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ports = ports_from(decoy)
    monkeypatch.setattr(moto, "free_port", lambda: next(ports))
    server = moto.start_moto_server(tmp_path)
    try:
        assert server.port != decoy
        server.reset()  # the decoy has no /moto-api/reset that takes a POST
    finally:
        server.stop()
