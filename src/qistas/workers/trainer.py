"""Active learning's training passes: the database work in a loop of the background workers, the
model fits in a training process of their own.

The loop (``Trainer.step``, every ``QISTAS_ACTIVE_LEARNING_INTERVAL_SECONDS``) runs
``domain.active_learning.train_step`` where the other background work runs: in the ``qistas
worker`` process, or in each server process with ``QISTAS_BACKGROUND_PROCESS=false``. It finds
the projects due, takes a project's lease, reads what the pass learns from, writes ranks and
predictions in short transactions and renews the lease meanwhile. Only the fit is handed over.

Fitting TF-IDF and a regression is CPU work that holds the interpreter lock for seconds (the
vectoriser is pure Python): in a thread of a server it took a share of every request's time,
and in the worker process it would hold up webhooks and exports. So the fit runs in a child
process, started with ``spawn`` (a fresh interpreter: no copy of the parent's threads, locks or
connections) when the first pass needs it, at the lowest CPU priority (nice 19 and, on Linux,
the SCHED_IDLE policy) and with one BLAS thread, so that on a busy machine it only uses what the
servers leave over. Its code is ``qistas.training_process``, which imports nothing of the
server before its priority is lowered (importing the server's modules took seconds of CPU at
normal priority). It never opens the database: it receives a pass's texts and labels over a
pipe and sends back ranks, labels and scores, so no transaction is ever held open by a process
the scheduler is starving. While it computes, the loop's thread waits on the pipe outside any
transaction (the lease's own thread keeps renewing it).

Lifetime: the child holds one end of the pipe and exits when it is closed, which is also what
happens when its parent dies. ``stop`` ends a fit in progress at once: the child holds nothing
but the job, so it is terminated, and the pass writes nothing (the next one runs it again).
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.domain import active_learning
from qistas.domain.active_learning import FitJob, Fitted, fitted
from qistas.training_process import NICE, PROCESS_NAME, run

log = logging.getLogger("qistas.workers")

# After a pass whose fits took t seconds, rest at least REST * t: the training process is busy
# a quarter of the time at most. Priority alone does not keep it off the loop's back: on a
# 2-core machine it still slowed the annotation loop by half (the cores' caches and, on a VM,
# hyperthread siblings are shared whatever the scheduler decides); see docs/benchmarks.md.
REST = 3.0
POLL_SECONDS = 0.5  # how often a wait for the child looks at ``stopping``


class Stopped(Exception):
    """The workers are stopping: the pass in progress ends without writing."""


class Trainer:
    """The training loop of one background-workers process and its training process."""

    def __init__(self, settings: Settings, db: Database, *, nice: int = NICE) -> None:
        self.settings = settings
        self.db = db
        self.nice = nice
        self.stopping = threading.Event()
        self.process: Any = None
        self._conn: Connection | None = None
        self._rest_until = 0.0

    def step(self) -> bool:
        if time.monotonic() < self._rest_until:
            return False
        try:
            spent = active_learning.train_step(self.db, every=self.settings.active_learning_every,
                                               lease_seconds=self.settings.job_lease_seconds, fit=self.fit,
                                               pause=self._check)
        except Stopped:
            return False
        self._rest_until = time.monotonic() + REST * spent
        return False  # then sleep for the interval

    def _check(self, _stage: str) -> None:
        if self.stopping.is_set():
            raise Stopped

    def fit(self, job: FitJob) -> Fitted:
        """Run ``job`` in the training process (started if it is not running) and wait for it."""
        self._check("fit")
        if self.process is None or not self.process.is_alive():
            self._start()
        assert self._conn is not None
        try:
            self._conn.send(asdict(job))
            while not self._conn.poll(POLL_SECONDS):
                if self.stopping.is_set():
                    self._end()
                    raise Stopped
            status, value = self._conn.recv()
        except (EOFError, OSError):
            self._end()  # it died (killed, out of memory): the next pass starts another
            raise RuntimeError(f"{PROCESS_NAME}: the training process ended during a fit") from None
        if status != "ok":
            raise RuntimeError(f"{PROCESS_NAME}: the fit failed: {value}")
        return fitted(value)

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_end = context.Pipe()
        self.process = context.Process(target=run, args=(child_end, self.nice, self.settings.log_format,
                                                         self.settings.log_level),
                                       name=PROCESS_NAME, daemon=True)
        self.process.start()
        child_end.close()  # the child has its own copy: EOF reaches it when this end closes

    def _end(self, grace: float = 0.0) -> None:
        """Close the pipe, give a waiting child ``grace`` seconds to exit on its own, then end it."""
        if self._conn is not None:
            self._conn.close()  # a waiting child reads EOF and exits
            self._conn = None
        if self.process is not None:
            self.process.join(grace)
            if self.process.is_alive():  # in the middle of a fit
                self.process.terminate()
                self.process.join(5)

    def close(self) -> None:
        """End the training process (call after the loop has stopped)."""
        self.stopping.set()
        self._end(grace=5.0)

