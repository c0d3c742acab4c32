"""A helper process's name and CPU priority: set first thing in the processes a server starts
to do heavy Python work beside it (``training_process``, ``import_process``), before they
import anything of the server."""

from __future__ import annotations

import contextlib
import os


def lower_priority(name: str, nice: int, *, idle: bool = False) -> None:
    """Name this process ``name`` (Linux: in ps and top) and raise its nice value by ``nice``.

    ``idle``: also Linux's SCHED_IDLE, below nice 19; a waking server thread then preempts it at
    once (a nice-19 process may keep the core for its time slice, some milliseconds, which lands
    on the latency of the request that woke up). Only for a process that holds no lock anyone
    waits on: it may not run at all while the machine is busy.
    """
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(name)
    with contextlib.suppress(AttributeError, OSError):  # not on this platform
        os.nice(nice)
    if idle:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
