"""What the processes a server starts for heavy Python work beside it have in common (the
import process, ``import_process``; the report process, ``report_process``): their start and
their database.

Each is started with ``spawn`` (a fresh interpreter: no copy of the server's threads, locks or
connections) by a pool of ``api.helper_processes``, and sent each job as plain values.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qistas.db.engine import Database

_databases: dict[str, Database] = {}


def prepare(name: str, nice: int, log_format: str = "text", log_level: str = "warning",
            modules: tuple[str, ...] = ()) -> None:
    """Each process's start: its name and priority first, then logging like the server's, and
    a watch on the server: the process ends within a tenth of a second of its server's end,
    however it ended (``kill -9`` included), so work whose sender is gone stops where it is.
    Then the ``modules`` its jobs use are imported and, as a server process does once started,
    what is loaded is set aside from the garbage collector's full passes (``gc.freeze``), which
    otherwise walk it again while a job makes objects by the million (a fifth of an export's
    time in the worker process; for imports no difference was measured: docs/benchmarks.md)."""
    import gc
    import importlib

    from qistas.priority import lower_priority

    lower_priority(name, nice)
    threading.Thread(target=_end_with, args=(os.getppid(),), name="server-watch", daemon=True).start()
    import logging.config

    from qistas.logs import logging_config

    logging.config.dictConfig(logging_config(log_format=log_format, level=log_level))
    for module in modules:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()


def _end_with(server: int) -> None:
    while os.getppid() == server:
        time.sleep(0.1)
    os._exit(1)


def database(url: str, *, on_sqlite_connect: Callable[[Any, Any], None] | None = None) -> Database:
    """One engine per database for the life of the process; ``on_sqlite_connect`` is run on
    each new SQLite connection."""
    from sqlalchemy import event

    from qistas.db.engine import Database

    if url not in _databases:
        if url.startswith("sqlite"):
            db = Database.from_url(url)
            if on_sqlite_connect is not None:
                event.listen(db.engine, "connect", on_sqlite_connect)
        else:
            db = Database.from_url(url, pool_size=1, max_overflow=1)
        _databases[url] = db
    return _databases[url]
