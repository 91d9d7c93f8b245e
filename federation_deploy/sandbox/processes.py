"""The sandbox's services as processes: free ports, waiting until one answers, stopping them
all together, and the environment that points AWS tools at its moto_server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import requests

from federation_deploy.errors import ToolError
from federation_deploy.health import http


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortTaken(ToolError):
    """Something answered on the port, but not the process we started there: another process
    (on a shared machine, another user's server) took the port between free_port() and our
    bind. Talking to it would act on someone else's service."""


def _listening_inodes(port: int) -> set[str] | None:
    """Inodes of the sockets in LISTEN state on `port` (/proc/net/tcp and tcp6), or None
    where there is no /proc/net (macOS)."""
    found: set[str] = set()
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not any(table.exists() for table in tables):
        return None
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # sl local_address rem_address st ... uid timeout inode
            if len(fields) > 9 and fields[3] == "0A" and \
                    int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def _process_tree(pid: int) -> set[int]:
    """pid and its descendants, from the parent ids in /proc/<pid>/stat."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[-1].split()[1])
    tree = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    return tree


def listener_is_ours(pid: int, port: int) -> bool | None:
    """Whether the socket listening on `port` belongs to process pid or one of its children:
    its inode among their /proc/<pid>/fd. None where /proc cannot tell (no /proc/net)."""
    inodes = _listening_inodes(port)
    if inodes is None:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    if not wanted:
        return False
    for member in _process_tree(pid):
        try:
            fds = list(Path(f"/proc/{member}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            with suppress(OSError):
                if os.readlink(fd) in wanted:
                    return True
    return False


def _answers(url: str) -> bool:
    try:
        http.get(url, 2)  # any status is an answer
        return True
    except (requests.RequestException, OSError):
        return False


def _port(url: str) -> int:
    parsed = urllib.parse.urlsplit(url)
    return parsed.port or (443 if parsed.scheme == "https" else 80)


def wait_for_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None,
                  log: Path | None = None) -> None:
    """Poll url until it answers (any HTTP status), the process dies, or timeout.

    With a process, the answer counts only if that process (or a child) is the listener: on
    Linux its LISTEN socket's inode is among the process tree's open files; elsewhere, the
    process is still running after the answer. Otherwise PortTaken: the caller retries on a
    fresh port instead of using another process's server."""
    deadline = time.monotonic() + timeout
    while True:
        if _answers(url):
            if process is None:
                return
            ours = listener_is_ours(process.pid, _port(url))
            if ours is None:
                ours = process.poll() is None
            if ours:
                return
            # another process listens there: ours cannot bind it, and must not be waited for
            raise PortTaken(process.args if isinstance(process.args, list) else [url],
                            process.returncode, "", _tail(log),
                            summary=f"{url} is answered by another process, not the one "
                                    f"started for it (the port was taken)")
        if process is not None and process.poll() is not None:
            raise ToolError(process.args if isinstance(process.args, list) else [str(url)],
                            process.returncode, "", _tail(log),
                            summary=f"a sandbox service exited before answering on {url}")
        if time.monotonic() > deadline:
            raise ToolError([url], None, summary=f"no answer from {url} after {timeout:g}s")
        time.sleep(0.1)


def _tail(log: Path | None) -> str:
    return log.read_text(errors="replace")[-2000:] if log and log.exists() else ""


def process_start(pid: int) -> str | None:
    """What tells this process from a later one given the same PID: its start time (clock
    ticks after boot, /proc/<pid>/stat field 22); None when it is gone or there is no /proc
    (macOS)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count after the last ")"
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def recycled(pid: int, recorded: str | None) -> bool:
    """Whether pid now belongs to a process other than the one recorded (its process_start
    when it was started). A process that is gone, or a system without /proc, says False: a
    signal to the group then reaches only what is left of ours (Linux does not give a PID to
    a new process while a group of that number exists)."""
    now = process_start(pid)
    return now is not None and now != recorded


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
