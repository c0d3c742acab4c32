"""A TCP forwarder from a loopback port to a server, in threads of the process that opens it.

The outage tests shut it (every connection cut, new ones refused) and open it again on the same
port; ``benchmarks/annotate_loop.py --delay-ms`` holds each reply back a while with it, a
database across a network on one machine.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time


class Forwarder:
    """Forwards a loopback port to ``target`` until shut; ``open`` again on the same port.
    ``delay`` (seconds): what ``target`` sends reaches the client that long after it arrived, in
    order (a thread that sleeps until each chunk is due, so a fraction of a millisecond holds:
    an event loop's timers round up to whole milliseconds); what the client sends goes at once."""

    def __init__(self, target: tuple[str, int], *, delay: float = 0.0) -> None:
        self.target = target
        self.delay = delay
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(1024)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # shut
            upstream = socket.create_connection(self.target)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            replies = self._pipe_delayed if self.delay > 0 else self._pipe
            threading.Thread(target=replies, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source, sink)

    def _pipe_delayed(self, source: socket.socket, sink: socket.socket) -> None:
        due: collections.deque[tuple[float, bytes]] = collections.deque()
        ready = threading.Condition()

        def send() -> None:
            try:
                while True:
                    with ready:
                        while not due:
                            ready.wait()
                        at, data = due.popleft()
                    if not data:
                        return
                    time.sleep(max(0.0, at - time.monotonic()))
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                _close(source, sink)

        threading.Thread(target=send, daemon=True).start()
        try:
            while data := source.recv(65536):
                with ready:
                    due.append((time.monotonic() + self.delay, data))
                    ready.notify()
        except OSError:
            pass
        with ready:
            due.append((0.0, b""))  # the end, after what is still due
            ready.notify()

    def shut(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
        self._listener.close()
        with self._lock:
            cut, self._sockets = self._sockets, []
        _close(*cut)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
