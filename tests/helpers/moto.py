"""Start a real moto_server on a free 127.0.0.1 port, for terraform tests and the sandbox."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from federation_deploy.errors import ToolError
from federation_deploy.sandbox.processes import (
    PortTaken,
    free_port,
    moto_environment,
    wait_for_http,
)

__all__ = ["MotoServer", "free_port", "moto_environment", "start_moto_server"]


def moto_server_binary() -> str | None:
    """moto_server of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "moto_server"
    return str(beside) if beside.exists() else shutil.which("moto_server")


@dataclass
class MotoServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def environment(self) -> dict[str, str]:
        return moto_environment(self.url)

    def reset(self) -> None:
        """Forget every resource (much faster than destroying them with terraform)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_moto_server(log_dir: Path | None = None, timeout: float = 30.0) -> MotoServer:
    """Start moto_server on a free 127.0.0.1 port and wait until it answers.

    AWS managed IAM policies (AmazonEKSClusterPolicy, ...) are loaded, as stacks attach them.
    The server runs in its own session, so stop() ends it and any child it started.
    """
    binary = moto_server_binary()
    if binary is None:
        raise RuntimeError("moto_server not found (pip install 'moto[server]')")
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="moto-"))
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    last_error = ""
    for _attempt in range(3):  # another process may take the free port before moto binds it
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = log_dir / f"moto-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )
        server = MotoServer(url=url, port=port, process=process, log_path=log_path)
        try:
            # ready only when the listener is this moto_server, not another process's server
            wait_for_http(f"{url}/moto-api/data.json", timeout, process, log_path)
            return server
        except PortTaken as taken:
            last_error = str(taken)
        except ToolError:
            last_error = server.log()[-2000:]
        server.stop()
    raise RuntimeError(f"moto_server did not start:\n{last_error}")
