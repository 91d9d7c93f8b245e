"""The one seam for subprocesses: echo (censored), run with output streamed live, ToolError on
failure, and interrupts forwarded to the tool."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import IO, Literal, TextIO

from federation_deploy.errors import ToolError
from federation_deploy.signals import InterruptsHeld, signal_for_tools
from federation_deploy.values.secrets import CENSORED, censor

__all__ = ["CENSORED", "Live", "Runner", "censor", "strip_ansi"]

# Which of a tool's streams are shown as they come: "all" for tools whose output is progress
# (terraform plan/apply), "stderr" where stdout is data we parse (helm, `terraform output`).
Live = Literal["none", "stderr", "all"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Multi-line secrets (keys, certificates) are censored line by line in streamed output, where
# the whole value is never seen at once; a line shorter than this is too common to censor.
_MIN_SECRET_LINE = 8


def strip_ansi(text: str) -> str:
    """Text without terminal colour codes: what we keep, parse and put in errors."""
    return _ANSI.sub("", text)


def tool_env(env: Mapping[str, str | None] | None) -> dict[str, str] | None:
    """A tool's environment: ours with env's changes; a None value removes the variable (a
    hook that must not see the user's KUBECONFIG)."""
    if env is None:
        return None
    merged = {**os.environ, **env}
    return {key: value for key, value in merged.items() if value is not None}

@dataclass
class Runner:
    """Runs external commands the same way everywhere.

    Every command is echoed shell-quoted to ``echo_to`` (stderr) before it runs, with the
    registered secrets censored. With ``stream``, the streams a call marks ``live`` are copied
    line by line to ``echo_to`` as the tool writes them (censored; lines matching the call's
    ``quiet_lines`` only with ``full_output``), while a copy is kept for parsing and errors.
    Each tool runs in its own session: Ctrl-C (or SIGTERM, see signals.py) reaches us alone,
    and we forward it to the tool once, then wait up to ``interrupt_grace`` seconds for it to
    stop cleanly (terraform releases its state lock, helm rolls back) before killing it.
    """

    echo: bool = True
    echo_to: TextIO | None = None
    secrets: set[str] = field(default_factory=set)
    stream: bool = False
    full_output: bool = False
    color: bool = False
    interrupt_grace: float = 60.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_secrets(self, values: Iterable[str]) -> None:
        self.secrets.update(v for v in values if isinstance(v, str) and v)

    def censor(self, text: str) -> str:
        return censor(text, self.secrets)

    def format_argv(self, argv: Sequence[str], extra_secrets: Iterable[str] = ()) -> str:
        return censor(shlex.join(argv), {*self.secrets, *extra_secrets})

    def _out(self) -> TextIO:
        return self.echo_to or sys.stderr

    def _echo(self, argv: Sequence[str], cwd: str | None, extra_secrets: Iterable[str] = ()
              ) -> None:
        if not self.echo:
            return
        where = f"(in {cwd}) " if cwd else ""
        self._say(f"$ {where}{self.format_argv(argv, extra_secrets)}")

    def _say(self, line: str) -> None:
        with self._lock:
            print(line, file=self._out(), flush=True)

    def _line_secrets(self, extra: Iterable[str]) -> set[str]:
        values = {*self.secrets, *extra}
        for value in list(values):
            if "\n" in value:
                values.update(part.strip() for part in value.splitlines()
                              if len(part.strip()) >= _MIN_SECRET_LINE)
        return values

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str | None] | None = None,
        input: str | None = None,
        check: bool = True,
        ok_codes: Sequence[int] = (0,),
        capture: bool = True,
        timeout: float | None = None,
        live: Live = "none",
        quiet_lines: re.Pattern[str] | None = None,
        shown_secrets: Iterable[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Run argv; raise ToolError (censored output) when its exit code is not in ok_codes.

        ``live`` says which streams to show as they come (only when the Runner streams);
        ``shown_secrets`` are censored in what is shown (echo, live lines) but left in the
        returned output, for callers that parse it and censor it themselves (helm's YAML).
        The returned stdout and stderr are censored with the Runner's secrets (a multi-line
        secret also line by line), colour codes removed.
        """
        argv = [str(a) for a in argv]
        cwd_s = os.fspath(cwd) if cwd is not None else None
        shown = tuple(s for s in shown_secrets if s)
        self._echo(argv, cwd_s, shown)
        full_env = tool_env(env)
        # an interrupt while the tool starts is delivered once `proc` exists (below), where
        # the tool is stopped with it; raised inside Popen, it would leave the tool running
        held = InterruptsHeld()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd_s,
                env=full_env,
                text=True,
                encoding="utf-8",
                errors="replace",
                stdout=subprocess.PIPE if capture else None,
                stderr=subprocess.PIPE if capture else None,
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            held.release()
            raise ToolError(
                [self.censor(a) for a in argv],
                None,
                summary=f"{argv[0]}: not found",
                hint=f"install {os.path.basename(argv[0])} or put it on PATH",
            ) from exc
        except BaseException:
            held.release()
            raise
        shows = live if self.stream else "none"
        secrets = self._line_secrets(shown)
        out: list[str] = []
        err: list[str] = []
        threads: list[threading.Thread | None] = []
        try:
            # from here on the tool exists: an interrupt at any point stops it gracefully
            # (it runs in its own session, so nothing else would tell it)
            held.release()
            threads += [
                self._copy(proc.stdout, out, shows == "all", quiet_lines, secrets),
                self._copy(proc.stderr, err, shows in ("stderr", "all"), quiet_lines, secrets),
            ]
            if input is not None and proc.stdin is not None:
                threads.append(_start(_feed, proc.stdin, input))
            self._wait(proc, argv, timeout)
        except KeyboardInterrupt as interrupt:
            if proc.poll() is None:
                self._stop_gracefully(proc, os.path.basename(argv[0]), signal_for_tools(interrupt))
            raise
        finally:
            for thread in threads:
                if thread is not None:
                    thread.join()
        kept_secrets = self._line_secrets(())
        stdout = strip_ansi(censor("".join(out), kept_secrets))
        stderr = strip_ansi(censor("".join(err), kept_secrets))
        if check and proc.returncode not in ok_codes:
            raise ToolError([self.censor(a) for a in argv], proc.returncode, stdout, stderr)
        return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)

    def _copy(self, pipe: IO[str] | None, kept: list[str], show: bool,
              quiet_lines: re.Pattern[str] | None, secrets: set[str]) -> threading.Thread | None:
        """A thread keeping every line of pipe and showing the ones asked for, as they come."""
        if pipe is None:
            return None

        def copy() -> None:
            with pipe:
                for line in pipe:
                    kept.append(line)
                    if not show or (quiet_lines is not None and not self.full_output
                                    and quiet_lines.search(strip_ansi(line))):
                        continue
                    self._say(censor(line.rstrip("\n"), secrets))

        return _start(copy)

    def _wait(self, proc: subprocess.Popen[str], argv: Sequence[str], timeout: float | None
              ) -> None:
        """Wait for the tool; on timeout kill it (an interrupt is run()'s to handle)."""
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
            raise ToolError([self.censor(a) for a in argv], None,
                            summary=f"timed out after {timeout}s") from None

    def _stop_gracefully(self, proc: subprocess.Popen[str], tool: str, signum: int) -> None:
        """Forward the interrupt to the tool (once: it runs in its own session, so the
        terminal's Ctrl-C did not reach it), give it the grace period, then kill it. Killing at
        once, as subprocess.run does, can leave terraform's state lock or a pending helm
        release behind."""
        name = signal.Signals(signum).name
        if self.echo:
            self._say(f"{name}: sent to {tool}; waiting up to {self.interrupt_grace:g}s for it "
                      "to stop cleanly (interrupt again to kill it now)")
        _signal_group(proc, signum)
        try:
            proc.wait(timeout=self.interrupt_grace)
        except subprocess.TimeoutExpired:
            if self.echo:
                self._say(f"{tool} did not stop within {self.interrupt_grace:g}s: killed")
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        except KeyboardInterrupt:
            if self.echo:
                self._say(f"{tool}: killed (interrupted twice)")
            _signal_group(proc, signal.SIGKILL)
            proc.wait()

    def spawn(
        self,
        argv: Sequence[str],
        *,
        log_path: str | os.PathLike[str],
        env: Mapping[str, str | None] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process (a server) in its own session, output to log_path.

        Its own session means one signal to its process group stops it and its children.
        """
        argv = [str(a) for a in argv]
        self._echo(argv, os.fspath(cwd) if cwd is not None else None)
        full_env = tool_env(env)
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


def _start(target: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def _feed(stdin: IO[str], text: str) -> None:
    """Write a tool's input from a thread: a tool that writes before it reads cannot then
    block on a full pipe while we block writing to it."""
    with suppress(BrokenPipeError), stdin:  # a tool that exits unread says why in its exit code
        stdin.write(text)


def _signal_group(proc: subprocess.Popen[str], signum: int) -> None:
    """Signal the tool and the processes it started (its own session: pgid == pid)."""
    with suppress(ProcessLookupError, PermissionError):  # it has exited already
        os.killpg(proc.pid, signum)
