"""SIGTERM and SIGHUP treated like Ctrl-C: one exception for all, and which signal it stands for.

SIGHUP is a termination like SIGTERM (a closed terminal or SSH session, `kill -HUP`): left to
its default action it killed a deploy on the spot, its private kubeconfig (with the cluster
token) left on disk (issue 29). TERMINATING lists the signals handled alike, everywhere.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# The signals that end a run as Ctrl-C does, besides SIGINT (SIGHUP does not exist on Windows)
TERMINATING: tuple[int, ...] = tuple(
    s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a CI runner cancelling, `timeout`, `kill`, a closed terminal)
    raised where Ctrl-C would be.

    A KeyboardInterrupt, so every `except KeyboardInterrupt` cleanup runs for both; it carries
    the signal so that a tool running at that moment is sent the same one (runner.Runner).
    """

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_of(exc: BaseException) -> int:
    """The signal an interrupt stands for: Terminated's own (SIGTERM, SIGHUP), else SIGINT
    (Ctrl-C). The exit status is 128 + it."""
    return exc.signum if isinstance(exc, Terminated) else signal.SIGINT


def signal_for_tools(exc: BaseException) -> int:
    """The signal a running tool is sent for an interrupt: the same one, except SIGTERM for
    SIGHUP (helm and terraform clean up on SIGINT and SIGTERM, not on a hang-up)."""
    signum = signal_of(exc)
    return signal.SIGTERM if signum in TERMINATING else signum


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP (TERMINATING) raise Terminated in the main thread (as
    SIGINT raises KeyboardInterrupt); the previous handlers are restored on the way out.
    Outside the main thread (where Python cannot install handlers) this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = {signum: signal.signal(signum, handler) for signum in TERMINATING}
    try:
        yield
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before)


class InterruptsHeld:
    """From creation until release(), SIGINT, SIGTERM and SIGHUP are noted instead of raised;
    release()
    puts the handlers back and delivers the first one noted as it would have been delivered
    (KeyboardInterrupt, Terminated, or the default action).

    For a step that must not be cut in half: starting a tool. An interrupt raised inside
    subprocess.Popen, after the child exists but before Popen returns, would leave the tool
    running with nobody to stop it (it runs in its own session). Outside the main thread
    (where Python runs no signal handlers) this does nothing.
    """

    _SIGNALS = (signal.SIGINT, *TERMINATING)

    def __init__(self) -> None:
        self._noted: list[int] = []
        self._previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in self._SIGNALS:
                self._previous[signum] = signal.signal(signum, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self._noted.append(signum)

    def release(self) -> None:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        if not self._noted:
            return
        signum = self._noted[0]
        self._noted = []
        handler = previous.get(signum)
        if callable(handler):
            handler(signum, None)  # raises, as it would have
        elif handler == signal.SIG_DFL:
            signal.raise_signal(signum)
