"""SIGTERM treated like Ctrl-C: one exception for both, and which signal it stands for."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI runner cancelling, `timeout`, `kill`) raised where Ctrl-C would be.

    A KeyboardInterrupt, so every `except KeyboardInterrupt` cleanup runs for both; it carries
    the signal so that a tool running at that moment is sent the same one (runner.Runner).
    """

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_of(exc: BaseException) -> int:
    """The signal an interrupt stands for: SIGTERM for Terminated, else SIGINT (Ctrl-C)."""
    return exc.signum if isinstance(exc, Terminated) else signal.SIGINT


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises Terminated in the main thread (as SIGINT raises
    KeyboardInterrupt); the previous handler is restored on the way out. Outside the main
    thread (where Python cannot install handlers) this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class InterruptsHeld:
    """From creation until release(), SIGINT and SIGTERM are noted instead of raised; release()
    puts the handlers back and delivers the first one noted as it would have been delivered
    (KeyboardInterrupt, Terminated, or the default action).

    For a step that must not be cut in half: starting a tool. An interrupt raised inside
    subprocess.Popen, after the child exists but before Popen returns, would leave the tool
    running with nobody to stop it (it runs in its own session). Outside the main thread
    (where Python runs no signal handlers) this does nothing.
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

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
