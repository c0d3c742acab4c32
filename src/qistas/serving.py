"""Serving the app with uvicorn: the event loop and the HTTP protocol it runs with."""

from __future__ import annotations

import asyncio
import fcntl
import mmap
import os
import random
import shutil
import socket
import struct
import time
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from qistas.logs import logging_config

APP_FACTORY = "qistas.api.app:app_from_environment"
# prometheus-client's switch to multiprocess mode; read when it is first imported, so it is
# set before the app (and its metrics) is: in this process and, inherited, in every worker.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


# Requests a kept-alive connection serves before it is closed (about: see HttpProtocol), set by
# ``qistas serve`` for its worker processes from QISTAS_KEEPALIVE_REQUESTS; 0 or unset: no limit.
KEEPALIVE_REQUESTS = "QISTAS_KEEPALIVE_REQUESTS"
_keepalive_requests: int | None = None


def _requests_for_a_connection() -> int:
    """This connection's limit: drawn between half and one and a half times the setting, so
    connections opened together (a browser's, a team's starting their day) do not close together."""
    global _keepalive_requests
    if _keepalive_requests is None:
        _keepalive_requests = int(os.environ.get(KEEPALIVE_REQUESTS) or 0)
    if not _keepalive_requests:
        return 0
    return random.randint(max(1, _keepalive_requests // 2), _keepalive_requests + _keepalive_requests // 2)


# How many worker processes ``qistas serve`` runs, set by it for them; unset: one.
SERVE_WORKERS = "QISTAS_SERVE_WORKERS"


def serve_workers() -> int:
    """The number of worker processes of the ``qistas serve`` this process is one of (1 elsewhere)."""
    return int(os.environ.get(SERVE_WORKERS) or 1)


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0))


# The file in which the worker processes of one ``qistas serve --workers N`` keep their counts of
# connections (ConnectionShares), set by ``qistas serve`` for them; unset: one process.
CONNECTIONS_FILE = "QISTAS_SERVE_CONNECTIONS_FILE"
_SLOT = struct.Struct("<qqq")  # a process's pid, its open connections, and those it keeps
# A process lets at most one connection go in this many seconds: its client's next connection
# may land on the same process again (on an idle server one process accepts most connections),
# and goes on counting only once it is made, which may be its next request, seconds later.
MOVE_INTERVAL_SECONDS = 0.1


class ConnectionShares:
    """How many kept-alive connections each worker process of one server holds, so that one
    keeping more than its share lets a connection go (``HttpProtocol``).

    A small file every worker process maps: a slot per process, its pid, its open connections
    and those it keeps (open, less those told to close, whose clients will be back on a new
    connection), written by that process only. A process takes a slot when it starts
    (``join``), one that is free or whose process is gone.
    """

    def __init__(self, path: Path) -> None:
        from prometheus_client import Counter  # in a server, after prepare_metrics switched it to multiprocess mode

        self._fd = os.open(path, os.O_RDWR)  # kept for the lock in ``join``
        self._map = mmap.mmap(self._fd, 0)
        self._slot: int | None = None
        self._moved_at = -MOVE_INTERVAL_SECONDS
        self.open = self.kept = 0
        # Summed over the server's processes by a scrape (multiprocess mode), whatever registry.
        counter = Counter("qistas_connections_let_go", "Kept-alive connections answered Connection: close so that "
                          "their next lands on another process.", ["reason"], registry=None)
        self._let_go = {reason: counter.labels(reason) for reason in ("share", "requests")}

    @classmethod
    def create(cls, path: Path, processes: int) -> None:
        """A fresh file for ``processes`` worker processes (twice the slots: a process that
        replaces a dead one may start before the dead one's slot is seen to be free)."""
        path.write_bytes(bytes(_SLOT.size * 2 * processes))

    def join(self) -> None:
        """Take this process's slot, freeing those of processes that are gone."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            for slot, (pid, _open, _kept) in enumerate(_SLOT.iter_unpack(self._map)):
                if pid and not _alive(pid):
                    _SLOT.pack_into(self._map, slot * _SLOT.size, 0, 0, 0)
                    pid = 0
                if not pid and self._slot is None:
                    self._slot = slot
                    self._write()
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def opened(self) -> None:
        self.open += 1
        self.kept += 1
        self._write()

    def closed(self, *, kept: bool) -> None:
        """A connection ended; ``kept``: it had not been let go."""
        self.open -= 1
        self.kept -= kept
        self._write()

    def let_go(self, reason: str) -> None:
        """A connection told to close (``reason``: ``share`` or ``requests``): its client's next
        connection may land elsewhere."""
        self.kept -= 1
        self._write()
        self._let_go[reason].inc()

    def let_one_go(self, now: float) -> bool:
        """Whether to let a connection go now (``let_go`` done): this process keeps more than
        its share and let none go in the last ``MOVE_INTERVAL_SECONDS``."""
        if now - self._moved_at < MOVE_INTERVAL_SECONDS or not self.over_share():
            return False
        self._moved_at = now
        self.let_go("share")
        return True

    def over_share(self) -> bool:
        """Whether this process keeps more connections than its share: the server's open
        connections spread evenly over its processes, rounded up."""
        if self._slot is None:
            return False
        total = processes = 0
        for pid, opened, _kept in _SLOT.iter_unpack(self._map):
            if pid:
                total += opened
                processes += 1
        return self.kept > -(-total // processes)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    def _write(self) -> None:
        if self._slot is not None:
            _SLOT.pack_into(self._map, self._slot * _SLOT.size, os.getpid(), self.open, self.kept)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


_shares: ConnectionShares | None = None


def join_connection_shares() -> None:
    """In a worker process of ``qistas serve --workers N``: take its place among the processes
    that share the server's connections, and count the connections it lets go
    (``qistas_connections_let_go_total``). Elsewhere (one process, tests), nothing."""
    global _shares
    path = os.environ.get(CONNECTIONS_FILE)
    if path and _shares is None:
        _shares = ConnectionShares(Path(path))
        _shares.join()


def prepare_connection_shares(home: Path, port: int, processes: int) -> None:
    """The connection counts' file for a server of ``processes`` worker processes on ``port``,
    made afresh, for its workers to find; with one process, none."""
    if processes < 2:
        os.environ.pop(CONNECTIONS_FILE, None)
        return
    path = home / f"connections-{port}"
    ConnectionShares.create(path, processes)
    os.environ[CONNECTIONS_FILE] = str(path)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, with Nagle's algorithm off on every connection, and
    kept-alive connections closed after about ``QISTAS_KEEPALIVE_REQUESTS`` requests or while
    their process keeps more than its share.

    Nagle: asyncio turns it off only on sockets that say they are TCP, and the listening socket
    uvicorn binds for its worker processes does not (its protocol number is 0). A response
    goes out as two writes, headers then body; with Nagle on, the body waited for the client
    to acknowledge the headers, which clients delay by 40 ms: every request of a
    ``--workers 2`` server took 44 ms instead of 1.

    Keep-alive: the worker processes share one listening socket, and a connection stays with
    the process that accepted it for as long as its client keeps it. Connections land where
    they land, not by load: with three processes on two cores and 32 annotators, the
    annotators' mean cycles ranged from 29 to 86 ms as some processes held more connections
    than others. Two ways out, each answering a request with ``Connection: close``, which moves
    its client's next connection to whichever process accepts it first: a process that keeps
    more connections than its share of the server's (``ConnectionShares``) lets one go at its
    next request, one every 0.1 s at most, until it keeps its share; and every connection
    closes after about ``QISTAS_KEEPALIVE_REQUESTS`` requests, so that busy ones move too.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.requests_left = _requests_for_a_connection()
        self.leaving = False
        if _shares is not None:
            _shares.opened()
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if _shares is not None:
            _shares.closed(kept=not self.leaving)
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.leaving or self.cycle is None:
            return
        if self.requests_left:
            self.requests_left -= 1
            if not self.requests_left:
                if _shares is not None:
                    _shares.let_go("requests")
                self._leave()
                return
        if _shares is not None and _shares.let_one_go(time.monotonic()):
            self._leave()

    def _leave(self) -> None:
        """The answer says ``Connection: close``, then the connection ends."""
        assert self.cycle is not None
        self.cycle.keep_alive = False
        self.leaving = True


def unavailable(host: str, port: int) -> str | None:
    """Why the address cannot be served (taken, not this machine's), or None when it can.

    Binds and closes a socket the way uvicorn will (SO_REUSEADDR, so a port in TIME_WAIT
    after a restart is not "taken"), so a taken port is one line, not a traceback after
    "serving on".
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def prepare_metrics(home: Path, port: int) -> Path:
    """An empty folder for this server's metric files (one per port: several servers may share
    a home), switched on for prometheus-client. Emptied, so counters start at zero like the
    server; the files of worker processes that stopped while it ran are kept, so totals never
    go down while it runs."""
    folder = home / f"metrics-{port}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR] = str(folder)
    return folder


def serve(*, host: str, port: int, workers: int, log_level: str, log_format: str,
          forwarded_allow_ips: str) -> None:
    # The standard library's event loop, not uvloop: under load uvloop kept reading a few
    # keep-alive connections one pass late, every time (with 32 annotators, 2 of them waited
    # twice as long as the other 30 on every request), for no gain in throughput.
    # uvicorn's access log stays off: ``api.requests`` writes a request line with more in it
    # (request id, route, duration) at level info.
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level,
                log_config=logging_config(log_format=log_format, level=log_level),
                access_log=False, loop="asyncio", http=HttpProtocol,
                # The client's address and scheme come from X-Forwarded-* only when the peer is
                # one of these proxies; anyone else could claim any address with them.
                proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips)
