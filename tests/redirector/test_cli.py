"""`federation-deploy redirector serve|config` and `python -m federation_deploy.sandbox.member` as
processes: start, answer, stop cleanly on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from federation_deploy.redirector import parse_config
from federation_deploy.sandbox.member import StandinHandle

from .conftest import Client, hosts_config, wait_until

pytestmark = pytest.mark.slow  # `redirector serve` and `config` as CLI processes

CLI = [sys.executable, "-c", "from federation_deploy.cli import main; main()"]


def wait_for_line(proc: subprocess.Popen[str], pattern: str, timeout: float = 20) -> re.Match[str]:
    """Read the process's stderr until a line matches pattern."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


def test_serve_answers_and_stops_on_sigterm(
    standins: Callable[..., StandinHandle], tmp_path: Path
) -> None:
    gke = standins("gke")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(hosts_config({"gke": (gke, 1)}, primes=("gke",))))
    proc = subprocess.Popen(
        [*CLI, "redirector", "serve", "--config", str(path), "--port", "0",
         "--address", "127.0.0.1"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        port = int(wait_for_line(proc, r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        client = Client(f"http://127.0.0.1:{port}")
        wait_until(lambda: client.get("/active_hosts").json()["active_hosts"])
        response = client.get("/build/gh/a/b/HEAD")
        assert response.status == 307 and response.location.startswith(gke.url)
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_with_invalid_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hosts": {"a": {"url": "https://a.org", "weight": -2,
                                                "prime": True}}}))
    result = subprocess.run([*CLI, "redirector", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "hosts.a.weight" in result.stderr and str(path) in result.stderr


def test_config_output_loads_in_the_redirector(tmp_path: Path) -> None:
    pytest.importorskip("federation_deploy.values.render")  # the lead's side of the contract
    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "config.json"
    result = subprocess.run(
        [*CLI, "--config-dir", str(repo / "config"), "redirector", "config", "--output",
         str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = parse_config(json.loads(out.read_text()))
    assert config.primes


def test_standin_as_a_process_is_steerable(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "federation_deploy.sandbox.member", "--port", "0", "--name", "ovh"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    try:
        port = int(wait_for_line(proc, r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        client = Client(f"http://127.0.0.1:{port}")
        assert client.get("/health").json()["ok"] is True
        assert client.get("/versions").status == 200
        client.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("PUT", "/_standin/state", body=json.dumps({"healthy": False}))
        assert conn.getresponse().read()
        conn.close()
        client = Client(f"http://127.0.0.1:{port}")
        answer = client.get("/health")
        assert answer.status == 503 and answer.json()["checks"][0] == {"service": "Hub",
                                                                        "ok": False}
        assert client.get("/build/gh/a/b/HEAD").json()["member"] == "ovh"
        assert client.get("/_standin/state").json()["counts"]["build"] == 1
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
