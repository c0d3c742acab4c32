"""Requests sent with an ``Idempotency-Key``: the first one runs, its retries get its answer.

A key belongs to the user who sent it. The first request inserts its row before any work
starts; the unique ``(user_id, key)`` means that of two identical requests at once, on any
number of processes, one inserts and runs, the other finds the row: still running (409) or
answered (the stored answer is replayed). A key sent again with another request is refused
(422). Keys older than ``QISTAS_IDEMPOTENCY_KEY_HOURS`` are forgotten (docs/api.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from qistas.db.models import IdempotentRequest
from qistas.domain.sealing import STORED_RESPONSE, Keyring
from qistas.errors import IdempotencyKeyInUse, IdempotencyKeyReused, Invalid

MAX_KEY_LENGTH = 255
PURGE_CHUNK = 1000


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    content_type: str | None
    body: bytes


def check_key(key: str) -> None:
    """1 to 255 printable ASCII characters (space included, as in a header value)."""
    if not key or len(key) > MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise Invalid(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                      details={"field": "Idempotency-Key"})


def begin(session: Session, *, user_id: int, key: str, fingerprint: str, now: datetime) -> int:
    """Insert the key, running; raises ``IntegrityError`` (at flush) when the user already used it."""
    row = IdempotentRequest(user_id=user_id, key=key, fingerprint=fingerprint, created_at=now)
    session.add(row)
    session.flush()
    return row.id


def earlier(session: Session, *, user_id: int, key: str, fingerprint: str, kept_since: datetime,
            keyring: Keyring) -> StoredResponse | None:
    """What became of the earlier request with this key: its answer to replay, or an error.

    None when it has expired: it is deleted here and the key may be used again.
    """
    row = session.scalar(select(IdempotentRequest).where(IdempotentRequest.user_id == user_id,
                                                         IdempotentRequest.key == key))
    if row is None:
        return None  # released or purged meanwhile
    if row.created_at < kept_since:
        session.delete(row)
        session.flush()
        return None
    if row.fingerprint != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request; use a new key for a "
                                   "new request", details={"field": "Idempotency-Key"})
    if row.status_code is None or row.body_sealed is None:
        raise IdempotencyKeyInUse("a request with this Idempotency-Key is still running; retry once it has "
                                  "answered", details={"field": "Idempotency-Key"})
    return StoredResponse(status_code=row.status_code, content_type=row.content_type,
                          body=keyring.open(row.body_sealed, purpose=STORED_RESPONSE))


def finish(session: Session, *, request_id: int, response: StoredResponse, keyring: Keyring) -> None:
    row = session.get(IdempotentRequest, request_id)
    if row is not None:
        row.status_code = response.status_code
        row.content_type = response.content_type
        row.body_sealed = keyring.seal(response.body, purpose=STORED_RESPONSE)
        session.flush()


def release(session: Session, *, request_id: int) -> None:
    """Forget a request that did not succeed: the key may be sent again."""
    session.execute(delete(IdempotentRequest).where(IdempotentRequest.id == request_id))


def purge(session: Session, *, kept_since: datetime) -> int:
    """Delete up to ``PURGE_CHUNK`` keys created before ``kept_since``; how many."""
    old = select(IdempotentRequest.id).where(IdempotentRequest.created_at < kept_since).limit(PURGE_CHUNK)
    ids = list(session.scalars(old))
    if ids:
        session.execute(delete(IdempotentRequest).where(IdempotentRequest.id.in_(ids)))
    return len(ids)


def reseal_responses(session: Session, *, keyring: Keyring) -> int:
    """Seal again with the current key every stored answer sealed with a previous one; how many."""
    changed = 0
    stored = select(IdempotentRequest).where(IdempotentRequest.body_sealed.is_not(None))
    for row in session.scalars(stored.order_by(IdempotentRequest.id)):
        assert row.body_sealed is not None
        if not keyring.is_current(row.body_sealed):
            row.body_sealed = keyring.seal(keyring.open(row.body_sealed, purpose=STORED_RESPONSE),
                                           purpose=STORED_RESPONSE)
            changed += 1
    session.flush()
    return changed
