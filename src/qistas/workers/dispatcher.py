"""Sends the outbox after commit: claim due deliveries, POST them signed, record the outcome.

Several server processes cooperate: a claim pushes ``next_attempt_at`` forward by a lease
(rows locked with SKIP LOCKED on PostgreSQL, one writer at a time on SQLite), so two
dispatchers never send the same row at once, and a process that dies mid-send leaves rows
that become due again when the lease runs out. A failed attempt is retried with exponential
backoff until ``webhook_retry_hours`` have passed since the event. Redirects are not
followed: a 3xx is a failed attempt. An attempt ends within ``webhook_timeout_seconds`` per
address tried, and reads at most 64 KiB of the receiver's answer (``workers/outbound.py``).
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import httpx
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from qistas import __version__
from qistas.config import Settings
from qistas.db.dialect import claim_lock
from qistas.db.engine import Database
from qistas.db.models import Delivery, Webhook
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import signing, webhooks
from qistas.domain.destinations import Blocked, Policy, Target, resolve
from qistas.domain.sealing import Keyring
from qistas.errors import ConfigError
from qistas.workers.outbound import deadline_client, status_of

CLAIM = 10
PURGE_EVERY = timedelta(minutes=10)
SENDERS = 8  # deliveries sent at once by one process

log = logging.getLogger("qistas.workers")


@dataclass(frozen=True)
class Outgoing:
    id: int
    url: str
    event: str
    event_id: str
    body: bytes
    secret: str | None  # None: the webhook was deleted


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(settings: Settings, attempts: int) -> float:
    return float(min(settings.webhook_retry_base_seconds * 2 ** max(attempts - 1, 0),
                     settings.webhook_retry_max_delay_seconds))


def post(client: httpx.Client, target: Target, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST to the addresses that were checked, naming the host in Host and TLS SNI."""
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = host if target.port == default_port else f"{host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    error = "no address"
    for address in target.addresses:
        url = httpx.URL(target.url).copy_with(host=address)
        try:
            status = status_of(client, url, content=body, headers={**headers, "Host": host_header},
                               extensions=extensions)
        except httpx.ConnectError as exc:
            error = f"connect to {address} failed: {exc}"[:500]
            continue  # the next address of the host may answer
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
        if 300 <= status < 400:
            return Outcome(status, "redirects are not followed")
        if status >= 400:
            return Outcome(status, f"HTTP {status}")
        return Outcome(status, None)
    return Outcome(None, error)


class Dispatcher:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.policy = Policy.from_settings(settings)
        self.keyring = Keyring.from_settings(settings)
        # No pooled connections: the pool is keyed by the address we connect to, so a TLS
        # connection opened for one host name could otherwise carry a request for another.
        # Each connection ends within the timeout, however slowly the receiver answers.
        self.client = deadline_client(settings.webhook_timeout_seconds)

        self._next_purge: datetime | None = None
        self.pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="qistas-send")

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()

    def purge(self, *, now: datetime) -> int:
        """Drop delivered and failed deliveries older than ``webhook_log_days`` from the log."""
        cutoff = now - timedelta(days=self.settings.webhook_log_days)
        done = Delivery.status.in_(("delivered", "failed"))
        query = delete(Delivery).where(done, Delivery.created_at < cutoff).returning(Delivery.id)
        return write(self.db, lambda session: len(session.execute(query).all()))

    def step(self) -> bool:
        """Send one claim of due deliveries; False when nothing was due."""
        now = utcnow()
        if self._next_purge is None or now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            self.purge(now=now)
        due = Delivery.status == "pending", Delivery.next_attempt_at <= now
        with self.db.reader() as session:
            if session.scalar(select(Delivery.id).where(*due).limit(1)) is None:
                return False
        claimed = write(self.db, self._claim)
        # In parallel, so one slow receiver does not hold up the others' deliveries.
        for outgoing, outcome in zip(claimed, self.pool.map(self.send, claimed), strict=True):
            write(self.db, partial(self._record, outgoing=outgoing, outcome=outcome))
        return True

    def _claim(self, session: Session) -> list[Outgoing]:
        now = utcnow()
        query = (
            select(Delivery)
            .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(CLAIM)
        )
        # Longer than an attempt can take (a deadline per address tried), so no other process
        # sends it while this one may; a process that dies holding it frees it this long after.
        lease = timedelta(seconds=self.settings.webhook_timeout_seconds * 4 + self.settings.job_lease_seconds)
        claimed = []
        for delivery in session.scalars(claim_lock(session, query)):
            delivery.next_attempt_at = now + lease
            claimed.append(Outgoing(
                id=delivery.id, url=delivery.url, event=delivery.event, event_id=delivery.event_id,
                body=json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode(),
                secret=self._secret(session, delivery),
            ))
        return claimed

    def _secret(self, session: Session, delivery: Delivery) -> str | None:
        if delivery.webhook_id is None:
            return signing.callback_secret(self.settings.secret_key or "", delivery.project_id)
        hook = session.get(Webhook, delivery.webhook_id)
        if hook is None or not hook.is_active:
            return None
        try:
            return webhooks.signing_secret(hook, keyring=self.keyring)
        except ConfigError as exc:  # sealed with a key this server lacks, or altered
            log.error("webhook %s: %s", hook.id, exc.message)
            return None

    def send(self, outgoing: Outgoing) -> Outcome:
        if outgoing.secret is None:
            return Outcome(None, "the webhook was deleted, or its secret cannot be opened (see the server log)")
        try:
            target = resolve(outgoing.url, self.policy)  # checked again at every connect
        except Blocked as exc:
            return Outcome(None, exc.message[:500])
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"Qistas-Webhooks/{__version__}",
            "Qistas-Event": outgoing.event,
            "Qistas-Event-Id": outgoing.event_id,
            "Qistas-Delivery": str(outgoing.id),
            signing.HEADER: signing.sign(outgoing.secret, outgoing.body, int(time.time())),
        }
        return post(self.client, target, outgoing.body, headers)

    def _record(self, session: Session, *, outgoing: Outgoing, outcome: Outcome) -> None:
        delivery = session.get(Delivery, outgoing.id)
        if delivery is None or delivery.status != "pending":
            return
        now = utcnow()
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        if outcome.ok:
            delivery.status = "delivered"
            delivery.delivered_at = now
            return
        retry_at = now + timedelta(seconds=backoff(self.settings, delivery.attempts))
        give_up = delivery.created_at + timedelta(hours=self.settings.webhook_retry_hours)
        if outgoing.secret is None or retry_at > give_up:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = retry_at
