"""What the workers that call model endpoints share (pre-label jobs, generation batches): the
endpoint as a worker calls it, the lease one chunk of requests needs, and the step of a leased
job -- a cheap read first (most polls find nothing), the claim, a plan made in one transaction,
the run, and the job failed with its reason on an unexpected error.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from functools import partial
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import ModelEndpoint
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import model_endpoints as endpoints
from qistas.domain.destinations import Policy
from qistas.domain.sealing import Keyring
from qistas.workers.chat import Endpoint, Retrying, Stopped

ROUNDS = 2  # of max_concurrency requests per chunk

PlanT = TypeVar("PlanT")


class Abandoned(Exception):
    """Another worker took the job over, or it was stopped; this attempt leaves it alone."""


def endpoint_call(endpoint: ModelEndpoint, *, keyring: Keyring, policy: Policy) -> Endpoint:
    """Where and how to call the endpoint: its API key opened (``ConfigError`` when it was sealed
    with a key this server lacks, or altered), private hosts allowed only where an admin allowed
    them for this endpoint."""
    return Endpoint(url=f"{endpoint.base_url}/chat/completions", model=endpoint.model,
                    api_key=endpoints.api_key(endpoint, keyring=keyring),
                    policy=Policy(allow_private=policy.allow_private or endpoint.allow_private,
                                  allowed_networks=policy.allowed_networks),
                    timeout=endpoint.timeout_seconds)


def chunk_lease(endpoint: ModelEndpoint, retrying: Retrying) -> timedelta:
    """The longest one chunk may take on the endpoint (every request timing out and retried
    after the longest delay, at its rate limit), and a margin."""
    attempts = retrying.attempts
    per_request = endpoint.timeout_seconds * attempts + retrying.max_delay * (attempts - 1)
    paced = 60.0 / endpoint.requests_per_minute * attempts * endpoint.max_concurrency * ROUNDS \
        if endpoint.requests_per_minute else 0.0
    return timedelta(seconds=per_request * ROUNDS + paced + 60)


class ModelJobWorker(ABC, Generic[PlanT]):
    """One kind of leased job that calls model endpoints; :meth:`step` runs one job."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.policy = Policy.from_settings(settings)
        self.keyring = Keyring.from_settings(settings)
        self.retrying = Retrying(settings.model_max_attempts, settings.model_retry_base_seconds,
                                 settings.model_retry_max_delay_seconds)
        self.stopping = threading.Event()

    def step(self) -> bool:
        """Run one job; False when none was waiting."""
        now = utcnow()
        with self.db.reader() as session:
            if not self._waiting(session, now=now):
                return False
        claimed = write(self.db, self._claim)
        if claimed is None:
            return False
        job_id, attempt = claimed
        try:
            plan = write(self.db, partial(self._plan, job_id=job_id, attempt=attempt))
            if plan is not None:
                self.run(plan)
        except (Abandoned, Stopped):
            return True
        except Exception as exc:
            write(self.db, partial(self._fail, job_id=job_id, attempt=attempt, error=f"{type(exc).__name__}: {exc}"))
            raise
        return True

    @abstractmethod
    def _waiting(self, session: Session, *, now: datetime) -> bool:
        """Whether a job is due or its lease has run out (a read, no lock)."""

    @abstractmethod
    def _claim(self, session: Session) -> tuple[int, int] | None:
        """(the job's id, its attempt) once claimed; None when another worker was first."""

    @abstractmethod
    def _plan(self, session: Session, *, job_id: int, attempt: int) -> PlanT | None:
        """What the run needs, read in one transaction; None when the job was finished instead."""

    @abstractmethod
    def run(self, plan: PlanT) -> None:
        """Send the job's requests and write what comes back, a chunk at a time."""

    @abstractmethod
    def _fail(self, session: Session, *, job_id: int, attempt: int, error: str) -> None:
        """Finish the job with ``error``, if this attempt still holds it."""
