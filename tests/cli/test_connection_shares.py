"""``qistas serve --workers N``: a worker process that keeps more than its share of the server's
connections lets one go at its next request, so connections spread over the processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from http.client import HTTPConnection
from pathlib import Path

import pytest

from qistas.serving import MOVE_INTERVAL_SECONDS, ConnectionShares
from tests.api.helpers import scrape, value
from tests.api.test_engine_processes import serve_processes

LET_GO = "qistas_connections_let_go_total"


@pytest.fixture
def shares_of(tmp_path: Path) -> Iterator[Callable[[int], list[ConnectionShares]]]:
    opened: list[ConnectionShares] = []

    def joined(count: int) -> list[ConnectionShares]:
        for _ in range(count):  # in one process, each takes a slot of its own, as processes do
            opened.append(ConnectionShares(tmp_path / "connections"))
            opened[-1].join()
        return opened[-count:]

    yield joined
    for shares in opened:
        shares.close()


def test_a_process_over_its_share_lets_connections_go_until_it_keeps_its_share(
        tmp_path: Path, shares_of: Callable[[int], list[ConnectionShares]]) -> None:
    ConnectionShares.create(tmp_path / "connections", 3)
    first, second, third = shares_of(3)
    for _ in range(7):
        first.opened()
    second.opened()
    assert not second.over_share() and not third.over_share()
    moved = 0
    while first.over_share():  # 8 open over 3 processes: a share of 3
        first.let_go("share")
        moved += 1
    assert (moved, first.kept, first.open) == (4, 3, 7)
    for client in range(4):  # the connections let go end, and their clients come back elsewhere
        first.closed(kept=False)
        (second if client % 2 else third).opened()
    assert (first.open, second.open, third.open) == (3, 3, 2)
    assert not any(shares.over_share() for shares in (first, second, third))
    third.opened()
    third.opened()  # 3, 3, 4: a share of 4 (rounded up)
    assert not third.over_share()
    third.opened()  # 3, 3, 5
    assert third.over_share() and not first.over_share() and not second.over_share()


def test_a_process_lets_one_connection_go_in_an_interval(
        tmp_path: Path, shares_of: Callable[[int], list[ConnectionShares]]) -> None:
    ConnectionShares.create(tmp_path / "connections", 2)
    crowded, _idle = shares_of(2)
    for _ in range(6):
        crowded.opened()
    assert crowded.let_one_go(100.0) and crowded.kept == 5  # six open over two processes: a share of 3
    assert not crowded.let_one_go(100.0 + MOVE_INTERVAL_SECONDS / 2) and crowded.kept == 5
    assert crowded.let_one_go(101.0) and crowded.kept == 4
    assert crowded.let_one_go(102.0) and crowded.kept == 3
    assert not crowded.let_one_go(103.0) and crowded.kept == 3


def test_the_slot_of_a_process_that_is_gone_is_taken_and_no_longer_counted(
        tmp_path: Path, shares_of: Callable[[int], list[ConnectionShares]]) -> None:
    path = tmp_path / "connections"
    ConnectionShares.create(path, 1)  # two slots
    subprocess.run([sys.executable, "-c", "from pathlib import Path; from qistas.serving import ConnectionShares\n"
                    f"shares = ConnectionShares(Path({str(path)!r})); shares.join()\n"
                    "for _ in range(9): shares.opened()"], check=True)
    here, _replacing = shares_of(2)  # the gone process's slot is freed: room for both
    here.opened()
    assert not here.over_share()  # the gone process's 9 connections no longer count


def _listening_and_established(port: int) -> tuple[str, set[str]]:
    """The inode of the socket listening on ``port`` and those of the connections accepted on it."""
    listening, established = "", set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) != port:
                continue
            if fields[3] == "0A":
                listening = fields[9]
            elif fields[3] == "01":
                established.add(fields[9])
    return listening, established


def _accepting(pid: int, listening: str) -> bool:
    """Whether the process's event loop watches the listening socket (an epoll entry for its
    descriptor): a worker that started but is still building its app is not accepting yet."""
    process = Path(f"/proc/{pid}")
    try:
        numbers = {fd.name for fd in (process / "fd").iterdir() if os.readlink(fd) == f"socket:[{listening}]"}
        watched = {line.split()[1] for info in (process / "fdinfo").iterdir()
                   for line in info.read_text().splitlines() if line.startswith("tfd:")}
    except OSError:
        return False
    return bool(numbers & watched)


def _connections_by_worker(port: int) -> dict[int, int]:
    """Each worker process of the server on ``port``: how many of its accepted connections it holds."""
    listening, established = _listening_and_established(port)
    held: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
            sockets = {os.readlink(fd).removeprefix("socket:[").rstrip("]") for fd in (entry / "fd").iterdir()}
        except OSError:
            continue
        if listening in sockets and b"serve" not in argv.split(b"\0"):  # a worker, not the supervisor
            held[int(entry.name)] = len(sockets & established)
    return held


@pytest.mark.slow
def test_connections_that_all_landed_on_one_process_spread_over_both(db_url: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight clients connect while one of two worker processes is stopped, so all eight land on
    the other; once both run, the crowded one lets four go and their clients' next connections
    land on the idle one. (``QISTAS_KEEPALIVE_REQUESTS=0``: no connection closes otherwise, so
    without the shares all eight stay where they landed.)"""
    monkeypatch.setenv("QISTAS_KEEPALIVE_REQUESTS", "0")
    with serve_processes(db_url, tmp_path, 1, "--workers", "2") as (url,):
        port = int(url.rsplit(":", 1)[1])
        workers = _connections_by_worker(port)
        assert len(workers) == 2, workers
        listening, _ = _listening_and_established(port)
        assert _eventually(lambda: all(_accepting(pid, listening) for pid in workers), seconds=120)
        stopped, running = sorted(workers)
        clients = [HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(8)]
        try:
            os.kill(stopped, signal.SIGSTOP)
            try:  # connected, no request yet: accepted by the running process alone
                for client in clients:
                    client.sock = socket.create_connection(("127.0.0.1", port))
                assert _eventually(lambda: _connections_by_worker(port) == {stopped: 0, running: 8})
            finally:
                os.kill(stopped, signal.SIGCONT)
            # A connection let go comes back wherever the kernel hands it, to the crowded process
            # again as often as not: on a busy machine the spreading can take many rounds.
            closes, deadline = 0, time.monotonic() + 90
            while (held := _connections_by_worker(port)) != {stopped: 4, running: 4} and time.monotonic() < deadline:
                closes += _round(clients)  # a crowded process lets a connection go every 0.1 s
                time.sleep(0.01)
            assert held == {stopped: 4, running: 4}
            assert closes >= 4  # more where a client came back to the crowded one and was moved again
            time.sleep(2 * MOVE_INTERVAL_SECONDS)
            assert _round(clients) == 0  # settled
            scraped = scrape(url)  # what an operator sees
            assert value(scraped, LET_GO, reason="share") == closes
            assert value(scraped, LET_GO, reason="requests") == 0
        finally:
            for client in clients:
                client.close()


def _round(clients: list[HTTPConnection]) -> int:
    """A request from each client; how many were answered ``Connection: close`` (http.client
    opens a new connection for the client's next request)."""
    closes = 0
    for client in clients:
        client.request("GET", "/healthz")
        response = client.getresponse()
        assert response.status == 200 and response.read()
        closes += response.getheader("connection") == "close"
    return closes


def _eventually(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
