"""A pool of the server's helper processes (``qistas.helper_process``): started at the first
job and kept until the server stops.

A job waits for a free process; the request waits on the event loop meanwhile, holding no
thread. Waiting jobs take their turns by organization: a process that comes free goes to the
oldest waiting job of the organization with the fewest jobs in the processes, and of those to the
organization served longest ago. So the jobs one organization has queued never stand before
another organization's, however many it sends (each of its requests is one job, up to its
in-flight cap, ``QISTAS_MAX_REQUESTS_IN_FLIGHT_PER_ORG``: half the server's threads by default);
with one process, another organization's job waits for the job running when it came and, at
most, one job of each other organization waiting.
A process that dies (killed, out of memory) fails its own job with 503 and the next job starts
a new pool.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from typing import TypeVar

from qistas.config import Settings
from qistas.errors import Unavailable

T = TypeVar("T")
J = TypeVar("J")


class HelperProcesses:
    """``size`` processes, each begun by ``prepare(nice, log format, log level)``; ``lost``:
    what a job whose process ended is told."""

    def __init__(self, settings: Settings, *, size: int, prepare: Callable[..., None], nice: int, lost: str) -> None:
        self.settings, self.size, self.prepare, self.nice, self.lost = settings, size, prepare, nice, lost
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Jobs sent to a process and not yet done: never more than ``size``, so the pool's own
        # queue (first come, first served) stays empty and the turns are taken here.
        self._busy = 0
        self._running: Counter[int] = Counter()  # the same, by organization
        # Each organization's jobs waiting, oldest first, and when it was last given a process
        # (a count of the processes given).
        self._waiting: dict[int, deque[_Waiting]] = {}
        self._given_at: dict[int, int] = {}
        self._given = 0

    @property
    def open(self) -> bool:
        """Whether jobs may be sent (there are processes, and the server is not stopping)."""
        return self.size > 0 and not self._closed

    async def run(self, function: Callable[[J], T], job: J, *, org_id: int) -> T:
        """``function(job)`` in one of the processes, in ``org_id``'s turn."""
        await self._turn(org_id)
        try:
            pool = self._started()
        except Unavailable:
            self._done(org_id)
            raise
        try:
            future = pool.submit(function, job)
        except BaseException as exc:
            self._done(org_id)
            if isinstance(exc, BrokenProcessPool):
                self._broken(pool)
                raise Unavailable(self.lost) from None
            raise
        future.add_done_callback(lambda _: self._done(org_id))  # when the process is free again
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._broken(pool)
            raise Unavailable(self.lost) from None

    def _broken(self, pool: ProcessPoolExecutor) -> None:
        """``pool`` lost a process: the next job starts a new one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    async def _turn(self, org_id: int) -> None:
        """Wait until a process is free for a job of ``org_id`` and it is the organization's turn."""
        with self._lock:
            if self._closed:
                raise Unavailable("the server is stopping")
            if self._busy < self.size and not self._waiting:
                self._busy += 1
                self._give(org_id)
                return
            waiting = _Waiting(asyncio.get_running_loop())
            self._waiting.setdefault(org_id, deque()).append(waiting)
        try:
            await waiting.turn
        except asyncio.CancelledError:
            with self._lock:
                queue = self._waiting.get(org_id)
                if queue is not None and waiting in queue:  # still in line: leave it
                    queue.remove(waiting)
                    if not queue:
                        del self._waiting[org_id]
                granted = waiting.granted
            if granted:
                self._done(org_id)  # its turn came as it was canceled: the process goes to the next job
            raise

    def _done(self, org_id: int) -> None:
        """A job of ``org_id`` is done with its process: the next waiting job takes it, the oldest
        of the organization with the fewest jobs in the processes, served longest ago."""
        with self._lock:
            self._running[org_id] -= 1
            if not self._running[org_id]:
                del self._running[org_id]
            while self._waiting:
                turn = min(self._waiting, key=lambda org: (self._running[org], self._given_at.get(org, -1)))
                queue = self._waiting[turn]
                waiting = queue.popleft()
                if not queue:
                    del self._waiting[turn]
                try:
                    waiting.loop.call_soon_threadsafe(waiting.resolve, None)
                except RuntimeError:
                    continue  # its event loop is closed: no one waits on it
                waiting.granted = True
                self._give(turn)
                return  # the process goes to that job
            self._busy -= 1

    def _give(self, org_id: int) -> None:
        """A process is given to a job of ``org_id`` (under the lock)."""
        self._running[org_id] += 1
        self._given += 1
        self._given_at[org_id] = self._given

    def _started(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise Unavailable("the server is stopping")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.size, mp_context=multiprocessing.get_context("spawn"),
                    initializer=self.prepare, initargs=(self.nice, self.settings.log_format, self.settings.log_level))
            return self._pool

    def close(self) -> None:
        """Let the processes end: each finishes the job it has, if any, then exits; jobs still
        waiting for one are refused."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            waiting, self._waiting = self._waiting, {}
        for queue in waiting.values():
            for job in queue:
                with suppress(RuntimeError):  # its event loop is closed: no one waits on it
                    job.loop.call_soon_threadsafe(job.resolve, Unavailable("the server is stopping"))
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class _Waiting:
    """A job waiting for a process: the future its request's event loop awaits, and whether
    the process was given to it (set under the pool's lock)."""

    __slots__ = ("loop", "turn", "granted")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.turn, self.granted = loop, loop.create_future(), False

    def resolve(self, outcome: Exception | None) -> None:
        """On the job's event loop: its turn has come (``outcome`` None), or it is refused."""
        if self.turn.done():
            return  # canceled meanwhile: ``_turn`` hands the process on
        if outcome is None:
            self.turn.set_result(None)
        else:
            self.turn.set_exception(outcome)
