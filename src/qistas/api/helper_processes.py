"""A pool of the server's helper processes (``qistas.helper_process``): started at the first
job and kept until the server stops.

A job waits for a free process; the request waits on the event loop meanwhile, holding no
thread. A process that dies (killed, out of memory) fails its own job with 503 and the next job
starts a new pool.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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

    @property
    def open(self) -> bool:
        """Whether jobs may be sent (there are processes, and the server is not stopping)."""
        return self.size > 0 and not self._closed

    async def run(self, function: Callable[[J], T], job: J) -> T:
        """``function(job)`` in one of the processes."""
        pool = self._started()
        try:
            return await asyncio.wrap_future(pool.submit(function, job))
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise Unavailable(self.lost) from None

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
        """Let the processes end: each finishes the job it has, if any, then exits; those still
        waiting for one are refused."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
