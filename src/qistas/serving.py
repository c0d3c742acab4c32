"""Serving the app with uvicorn: the event loop and the HTTP protocol it runs with."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
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


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, with Nagle's algorithm off on every connection, and
    kept-alive connections closed after about ``QISTAS_KEEPALIVE_REQUESTS`` requests.

    Nagle: asyncio turns it off only on sockets that say they are TCP, and the listening socket
    uvicorn binds for its worker processes does not (its protocol number is 0). A response
    goes out as two writes, headers then body; with Nagle on, the body waited for the client
    to acknowledge the headers, which clients delay by 40 ms: every request of a
    ``--workers 2`` server took 44 ms instead of 1.

    Keep-alive: the worker processes share one listening socket, and a connection stays with
    the process that accepted it for as long as its client keeps it. Connections opened while
    every process was idle stay spread as they landed, not by load: some annotators then wait
    on a busy process while another idles. Answering a request with ``Connection: close`` now
    and then moves its client's next connection to whichever process accepts it first, the
    least busy one (a busy one is not waiting in ``accept``).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.requests_left = _requests_for_a_connection()
        super().connection_made(transport)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.requests_left:
            self.requests_left -= 1
            if not self.requests_left and self.cycle is not None:
                self.cycle.keep_alive = False  # the answer says Connection: close, then the connection ends


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
