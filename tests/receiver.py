"""A webhook receiver for tests: an HTTP server on 127.0.0.1 that records what it gets.

``script`` maps a path to the statuses to answer in turn (the last one repeats); a 3xx
answer carries a Location header pointing at ``/redirected``. Two paths misbehave on purpose:
``/trickle`` answers one byte every ``TRICKLE_SECONDS`` (a status line that never ends), and
``/endless`` answers 200 with a body that never ends; ``sent`` counts their bytes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRICKLE_SECONDS = 0.3


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    script: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    stopped: threading.Event = field(default_factory=threading.Event)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, check: Callable[[Receiver], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(self):
                return
            time.sleep(0.05)
        raise AssertionError(f"the receiver did not get what was expected; got {self.received!r}")


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # senders deliver in parallel: keep every connection in the backlog
    daemon_threads = True


@contextmanager
def receiver(script: dict[str, list[int]] | None = None) -> Iterator[Receiver]:
    state: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            found: Receiver = state["receiver"]
            with found.lock:
                found.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                statuses = found.script.get(self.path, [200])
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            if self.path in ("/trickle", "/endless"):
                self._misbehave(found)
                return
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/redirected")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _misbehave(self, found: Receiver) -> None:
            trickle = self.path == "/trickle"
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + b"X-Slow: " + b"a" * 4096
            chunk = b"x" * 65536
            try:
                if not trickle:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                while not found.stopped.is_set():
                    if trickle:
                        piece, head = head[:1], head[1:] or b"a"
                        found.stopped.wait(TRICKLE_SECONDS)
                    else:
                        piece = chunk
                    self.wfile.write(piece)
                    self.wfile.flush()
                    with found.lock:
                        found.sent += len(piece)
            except OSError:
                pass  # the sender hung up
            self.close_connection = True

        def log_message(self, *_args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    found = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}", script=dict(script or {}))
    state["receiver"] = found
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.stopped.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
