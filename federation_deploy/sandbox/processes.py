"""The sandbox's services as processes: free ports, waiting until one answers, stopping them
all together, and the environment that points AWS tools at its moto_server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from federation_deploy.errors import ToolError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None,
                  log: Path | None = None) -> None:
    """Poll url until it answers (any HTTP status), the process dies, or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise ToolError(process.args if isinstance(process.args, list) else [str(url)],
                            process.returncode, "", tail,
                            summary=f"a sandbox service exited before answering on {url}")
        if time.monotonic() > deadline:
            raise ToolError([url], None, summary=f"no answer from {url} after {timeout:g}s")
        time.sleep(0.1)


def stop_process_groups(pids: Sequence[int], timeout: float = 10.0) -> None:
    """SIGTERM the process groups of pids all at once, then wait for them together (one
    deadline, not one per service); SIGKILL the groups still there when it passes."""
    waiting = []
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
            waiting.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        waiting = [pid for pid in waiting if not _gone(pid)]
        if waiting:
            time.sleep(0.05)
    for pid in waiting:
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    for pid in waiting:
        _gone(pid)  # reap our own children


def _gone(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child (`sandbox down` stops what `up` started)
        return not _alive(pid)
    return waited == pid or not _alive(pid)


def _alive(pid: int) -> bool:
    """Whether pid still runs. A zombie does not: where PID 1 reaps no orphans (containers),
    a service `sandbox up` started stays a zombie after it exited, and waiting for it to go
    cost `sandbox down` the whole timeout, one service after another."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill(0) is all we know
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def moto_environment(url: str) -> dict[str, str]:
    """Point the AWS SDKs of terraform (S3 backend, provider) at moto, with test credentials;
    no shared config or instance metadata, so a maintainer's ~/.aws is never used.

    moto has no EKS access entries (no CreateAccessEntry, and CreateCluster ignores
    accessConfig), so the stacks' switch for them is turned off here, by environment only;
    tests/commands/terraform/test_github_access.py shows the gap and fails once moto closes it."""
    return {
        "TF_VAR_enable_access_entries": "false",
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
