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
