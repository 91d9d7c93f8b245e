"""The one seam for subprocesses: echo (censored), run, and ToolError on failure."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from .errors import ToolError
from .secrets import CENSORED, censor

__all__ = ["CENSORED", "Runner", "censor"]


@dataclass
class Runner:
    """Runs external commands the same way everywhere.

    Every command is echoed shell-quoted to ``echo_to`` (stderr) before it runs, with the
    registered secrets censored.
    """

    echo: bool = True
    echo_to: TextIO | None = None
    secrets: set[str] = field(default_factory=set)

    def add_secrets(self, values: Iterable[str]) -> None:
        self.secrets.update(v for v in values if isinstance(v, str) and v)

    def censor(self, text: str) -> str:
        return censor(text, self.secrets)

    def format_argv(self, argv: Sequence[str]) -> str:
        return self.censor(shlex.join(argv))

    def _echo(self, argv: Sequence[str], cwd: str | None) -> None:
        if not self.echo:
            return
        stream = self.echo_to or sys.stderr
        where = f"(in {cwd}) " if cwd else ""
        print(f"$ {where}{self.format_argv(argv)}", file=stream, flush=True)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        check: bool = True,
        ok_codes: Sequence[int] = (0,),
        capture: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv; raise ToolError (censored output) when its exit code is not in ok_codes."""
        argv = [str(a) for a in argv]
        cwd_s = os.fspath(cwd) if cwd is not None else None
        self._echo(argv, cwd_s)
        full_env = None if env is None else {**os.environ, **env}
        try:
            proc = subprocess.run(
                argv,
                cwd=cwd_s,
                env=full_env,
                input=input,
                text=True,
                stdout=subprocess.PIPE if capture else None,
                stderr=subprocess.PIPE if capture else None,
                stdin=None if input is not None else subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ToolError(
                [self.censor(a) for a in argv],
                None,
                summary=f"{argv[0]}: not found",
                hint=f"install {os.path.basename(argv[0])} or put it on PATH",
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ToolError([self.censor(a) for a in argv], None,
                            summary=f"timed out after {timeout}s") from exc
        out = self.censor(proc.stdout or "")
        err = self.censor(proc.stderr or "")
        if check and proc.returncode not in ok_codes:
            raise ToolError([self.censor(a) for a in argv], proc.returncode, out, err)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        log_path: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process (a server) in its own session, output to log_path.

        Its own session means one signal to its process group stops it and its children.
        """
        argv = [str(a) for a in argv]
        self._echo(argv, os.fspath(cwd) if cwd is not None else None)
        full_env = None if env is None else {**os.environ, **env}
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            return subprocess.Popen(
                argv, cwd=cwd, env=full_env, stdout=fd, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise ToolError([self.censor(a) for a in argv], None,
                            summary=f"{argv[0]}: not found",
                            hint=f"install {os.path.basename(argv[0])} or put it on PATH") from exc
        finally:
            os.close(fd)
