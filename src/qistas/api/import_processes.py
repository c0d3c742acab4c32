"""The server's import processes (``qistas.import_process``): a pool started at the first
large import and kept until the server stops.

A job waits for a free process (``QISTAS_IMPORT_PROCESSES`` of them); the request waits on
the event loop meanwhile, holding no thread. A process that dies (killed, out of memory) fails
its own import with 503 and the next import starts a new pool; an import it had committed is
finished by the server's recovery (``staged_imports.recover``), one it had not is undone.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from qistas import import_process
from qistas.config import Settings
from qistas.domain.imports import ImportResult
from qistas.errors import Unavailable


class ImportProcesses:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def takes(self, size: int) -> bool:
        """Whether an import body of ``size`` bytes goes to an import process."""
        return self.settings.import_processes > 0 and size >= self.settings.import_process_min_bytes \
            and not self._closed

    async def run(self, job: import_process.FileImport) -> ImportResult:
        pool = self._started()
        try:
            return await asyncio.wrap_future(pool.submit(import_process.run, job))
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise Unavailable("the import stopped before it was written, as its process ended; nothing was "
                              "imported unless the project's tasks show it: send it again (rows with a unique_id "
                              "already there count as duplicates)") from None

    def _started(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise Unavailable("the server is stopping")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.settings.import_processes, mp_context=multiprocessing.get_context("spawn"),
                    initializer=import_process.prepare,
                    initargs=(import_process.NICE, self.settings.log_format, self.settings.log_level))
            return self._pool

    def close(self) -> None:
        """Let the processes end: each finishes the import it has, if any, then exits; those
        still waiting for one are refused."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
