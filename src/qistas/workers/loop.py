"""A background thread that calls ``step`` until stopped, sleeping when there is no work."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("qistas.workers")


class Loop:
    def __init__(self, name: str, step: Callable[[], bool], interval: float) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._step()
            except Exception:
                # A background worker must outlive one bad row or a database hiccup: log it
                # and try again after the interval; the work stays claimable in the database.
                log.exception("%s: step failed", self.name)
                busy = False
            if not busy:
                self._stop.wait(self._interval)
