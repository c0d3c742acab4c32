"""A TCP proxy that holds every reply back for a while: a database across a network, on one machine.

    python benchmarks/_delay_proxy.py --to 127.0.0.1:5432 --delay-ms 0.25 [--port 6543]

prints the port it listens on, then forwards each connection to ``--to``; what the upstream
sends back reaches the client ``--delay-ms`` after it arrived (a thread per direction and one
that sends when due, so a delay well under a millisecond holds: an event loop's timers round
up to whole milliseconds). What the client sends goes at once, so a round trip takes the
delay more than it would. Used to measure the loop against a database on another machine
(docs/scaling.md, section 3.9); its own CPU is not the server's nor the database's. A helper,
not a benchmark: ``annotate_loop.py --delay-ms`` starts it, ``make bench`` leaves it out.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import socket
import threading
import time


def forward(source: socket.socket, target: socket.socket) -> None:
    """Client -> upstream, as it comes."""
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        _shut(target)


def delayed(source: socket.socket, target: socket.socket, delay: float) -> None:
    """Upstream -> client, each chunk ``delay`` seconds after it arrived, in order."""
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
                pause = at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                target.sendall(data)
        except OSError:
            pass
        finally:
            _shut(target)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        while data := source.recv(65536):
            with ready:
                due.append((time.monotonic() + delay, data))
                ready.notify()
    except OSError:
        pass
    with ready:
        due.append((0.0, b""))
        ready.notify()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def serve(listener: socket.socket, upstream: tuple[str, int], delay: float) -> None:
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection(upstream)
        except OSError:
            client.close()
            continue
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=forward, args=(client, server), daemon=True).start()
        threading.Thread(target=delayed, args=(server, client, delay), daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", required=True, metavar="HOST:PORT", help="where to forward")
    parser.add_argument("--delay-ms", type=float, required=True, help="how long each reply is held back")
    parser.add_argument("--port", type=int, default=0, help="the port to listen on (default: any free one)")
    args = parser.parse_args()
    host, _, port = args.to.rpartition(":")
    listener = socket.create_server(("127.0.0.1", args.port), backlog=1024)
    print(listener.getsockname()[1], flush=True)
    serve(listener, (host, int(port)), args.delay_ms / 1000)


if __name__ == "__main__":
    main()
