"""A TCP relay in front of moto_server that holds a chosen request until the test releases it.

With it a test knows for certain that terraform is still running (it waits for an answer
only the test can let through), so streaming and interrupts are checked without any timing.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class HoldingRelay:
    """Forwards every connection to 127.0.0.1:target_port; the first request carrying
    ``pattern`` (e.g. b"Action=CreateVpc") and everything after it on that connection wait
    until release(). ``deadline`` only keeps a broken test from hanging forever: whether it
    expired is recorded, and tests assert it did not."""

    def __init__(self, target_port: int, pattern: bytes, deadline: float = 240.0) -> None:
        self.target_port = target_port
        self.pattern = pattern
        self.deadline = deadline
        self.held = threading.Event()
        self.released = threading.Event()
        self.deadline_expired = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        for sock in self._sockets:
            with suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        tail = b""  # the pattern may straddle two reads
        try:
            while data := source.recv(65536):
                if requests and not self.released.is_set() and self.pattern in tail + data:
                    self.held.set()
                    if not self.released.wait(self.deadline):
                        self.deadline_expired = True
                tail = data[-len(self.pattern):]
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
