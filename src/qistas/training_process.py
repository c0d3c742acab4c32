"""Active learning's training process: fits models for the background workers' training passes.

``workers.trainer`` starts it with ``spawn`` and gives it ``run``. It is kept apart from the
server's modules so that the new interpreter imports nothing of the server at the parent's
priority: the standard library only, then, once its priority is lowered, the model
(``qistas.quality.active``: numpy, scipy, scikit-learn). It never opens the database. Each
message is one job, a dict of plain values (``texts``, ``labels``, ``pending``,
``random_share``, ``version``); each reply ``("ok", (ranks, labels, scores))`` as arrays, or
``("error", text)``. It exits when its end of the pipe is closed.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from typing import Any

PROCESS_NAME = "qistas-active"  # its name in ps and /proc/<pid>/comm
NICE = 19  # the lowest CPU priority: it runs on what the servers leave over


def run(conn: Connection, nice: int = NICE, log_format: str = "text", log_level: str = "warning") -> None:
    """Fit each job received and send back its result, until the pipe closes."""
    lower_priority(nice)
    import logging.config

    from qistas.logs import logging_config
    from qistas.quality.active import rank_pending

    logging.config.dictConfig(logging_config(log_format=log_format, level=log_level))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", rank_pending(job["texts"], job["labels"], job["pending"],
                                                         random_share=job["random_share"],
                                                         random_state=job["version"]))
        except Exception as error:  # the parent logs it and tries again at the next pass
            reply = ("error", repr(error))
        try:
            conn.send(reply)
        except OSError:
            return


def lower_priority(nice: int) -> None:
    from qistas.priority import lower_priority as lower

    lower(PROCESS_NAME, nice, idle=nice >= NICE)  # it never opens the database: idle is safe
    # one thread for numpy's BLAS: more would compete with the server for the same cores
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
