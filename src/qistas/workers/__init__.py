"""Background work of a server process: the webhook dispatcher, the export worker, pre-label jobs,
generation batches, refits, active learning's training passes (``workers.trainer``, with its
training process), finishing the imports of processes that died, linking the audit log's events
into their chains and signing its checkpoints, and forgetting expired idempotency keys.

Each ``qistas serve`` process runs them all; they claim work from the database, so any number
of processes cooperate and a job left by a crashed one is picked up again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import audit, idempotency, staged_imports
from qistas.domain.audit_chain import Signer
from qistas.domain.quality import refit_step
from qistas.workers.dispatcher import Dispatcher
from qistas.workers.exporter import Exporter
from qistas.workers.generator import Generator
from qistas.workers.loop import Loop
from qistas.workers.prelabeler import Prelabeler
from qistas.workers.trainer import Trainer

PURGE_IDEMPOTENCY_SECONDS = 60.0


@dataclass
class Workers:
    loops: list[Loop] = field(default_factory=list)
    dispatcher: Dispatcher | None = None
    exporter: Exporter | None = None
    prelabeler: Prelabeler | None = None
    generator: Generator | None = None
    trainer: Trainer | None = None

    def stop(self) -> None:
        if self.exporter is not None:
            self.exporter.stopping.set()
        if self.prelabeler is not None:
            self.prelabeler.stopping.set()
        if self.generator is not None:
            self.generator.stopping.set()
        if self.trainer is not None:
            self.trainer.stopping.set()
        for loop in self.loops:
            loop.stop()
        if self.dispatcher is not None:
            self.dispatcher.close()
        if self.exporter is not None:
            self.exporter.close()
        if self.trainer is not None:
            self.trainer.close()


def purge_idempotency_keys(db: Database, *, keep: timedelta) -> bool:
    """Forget one chunk of expired idempotency keys; True while more may be left."""
    kept_since = utcnow() - keep
    return write(db, partial(idempotency.purge, kept_since=kept_since)) == idempotency.PURGE_CHUNK


def start_workers(settings: Settings, db: Database) -> Workers:
    workers = Workers()
    if not settings.background_workers:
        return workers
    workers.dispatcher = Dispatcher(settings, db)
    workers.loops.append(Loop("qistas-dispatcher", workers.dispatcher.step, settings.worker_poll_seconds))
    workers.exporter = Exporter(settings, db)
    workers.loops.append(Loop("qistas-exporter", workers.exporter.step, settings.worker_poll_seconds))
    workers.prelabeler = Prelabeler(settings, db)
    workers.loops.append(Loop("qistas-prelabel", workers.prelabeler.step, settings.worker_poll_seconds))
    workers.generator = Generator(settings, db)
    workers.loops.append(Loop("qistas-generate", workers.generator.step, settings.worker_poll_seconds))
    workers.loops.append(Loop("qistas-imports", lambda: staged_imports.recover(db) > 0, settings.worker_poll_seconds))
    signer = Signer.from_secret(settings.secret_key or "")
    workers.loops.append(Loop("qistas-audit", lambda: audit.keep_chains(db, signer=signer),
                              settings.worker_poll_seconds))
    keep = timedelta(hours=settings.idempotency_key_hours)
    workers.loops.append(Loop("qistas-idempotency", partial(purge_idempotency_keys, db, keep=keep),
                              PURGE_IDEMPOTENCY_SECONDS))
    if settings.refit_interval_seconds > 0:
        workers.loops.append(Loop("qistas-refit", partial(refit_step, db, lease_seconds=settings.job_lease_seconds,
                                                          sample_answers=settings.refit_sample_answers),
                                  settings.refit_interval_seconds))
    if settings.active_learning_interval_seconds > 0:
        workers.trainer = Trainer(settings, db)
        workers.loops.append(Loop("qistas-active", workers.trainer.step, settings.active_learning_interval_seconds))
    for loop in workers.loops:
        loop.start()
    return workers
