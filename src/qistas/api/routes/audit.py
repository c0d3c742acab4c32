"""The organization's hash-chained audit log, its export, checkpoints and the public key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, After, AppSettings, Db, Limit
from qistas.api.schemas.audit import AuditCheckpointRead, AuditEventRead, AuditPage, AuditPublicKey
from qistas.config import Settings
from qistas.db.models import User
from qistas.db.unit_of_work import write
from qistas.domain import audit, users
from qistas.domain.audit_chain import Signer
from qistas.errors import Conflict, Invalid
from qistas.policies import ensure_audit_reader, ensure_org_reachable, is_admin

router = APIRouter(tags=["audit"])

OrgSlug = Annotated[str | None, Query(max_length=64, description="the organization (admins; owners may name "
                                                                 "their own); admins without it: the instance's chain")]


def signer(settings: Settings) -> Signer:
    return Signer.from_secret(settings.secret_key or "")


def _chain_org(session: Session, actor: User, org: str | None) -> int | None:
    """Whose chain: the owner's organization, or the one an admin names (None: the instance's)."""
    ensure_audit_reader(actor)
    if org is not None:
        return ensure_org_reachable(actor, users.find_org(session, org), org).id
    return None if is_admin(actor) else actor.org_id


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Invalid(f"{field} needs a time zone (e.g. 2026-01-31T12:00:00Z)", details={"field": field})
    return value


@router.get("/audit/public-key", response_model=AuditPublicKey)
def public_key(settings: AppSettings) -> AuditPublicKey:
    """The key that signs audit checkpoints: keep a copy to verify exported logs with."""
    key = signer(settings)
    return AuditPublicKey(public_key=key.public_key, key_id=key.key_id, pem=key.public_key_pem)


@router.get("/audit", response_model=AuditPage)
def audit_log(
    actor: Actor, db: Db, limit: Limit, after: After = None, org: OrgSlug = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    by: Annotated[str | None, Query(alias="actor", max_length=64, description="e.g. owner:12")] = None,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    since: Annotated[datetime | None, Query(description="events at or after this time")] = None,
    until: Annotated[datetime | None, Query(description="events before this time")] = None,
) -> AuditPage:
    """Events in chain order with their hashes, and the checkpoints of the span they cover.
    ``after`` is a ``seq``; reading the log is itself recorded."""
    where = audit.EventFilter(action=action, actor=by, object_type=object_type, object_id=object_id,
                              since=_aware(since, "since"), until=_aware(until, "until"))

    def work(session: Session) -> AuditPage:
        org_id = _chain_org(session, actor, org)
        audit.record(session, actor=actor, action="audit.read", object_type="org", object_id=org_id, org_id=org_id)
        audit.link_chain(session, org_id=org_id)
        page = [audit.event_fields(e) for e in audit.events_page(session, org_id=org_id, after=after, limit=limit,
                                                                 where=where)]
        signed = []
        if page:
            signed = [c for c in audit.checkpoints(session, org_id=org_id, upto=page[-1]["seq"])
                      if c.seq >= page[0]["seq"]]
        return AuditPage(items=[AuditEventRead(**fields) for fields in page],
                         checkpoints=[AuditCheckpointRead(**audit.checkpoint_fields(c)) for c in signed],
                         next=page[-1]["seq"] if len(page) == limit else None)

    return write(db, work)


@router.get("/audit/export", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}})
def export_audit(actor: Actor, db: Db, settings: AppSettings, org: OrgSlug = None) -> StreamingResponse:
    """The whole chain as JSON lines, with its checkpoints: ``qistas audit verify FILE`` checks it."""

    def authorise(session: Session) -> int | None:
        org_id = _chain_org(session, actor, org)
        audit.record(session, actor=actor, action="audit.export", object_type="org", object_id=org_id,
                     org_id=org_id)
        audit.link_chain(session, org_id=org_id)
        return org_id

    org_id = write(db, authorise)
    key = signer(settings)

    def lines() -> Iterator[bytes]:
        with db.reader() as session:
            for line in audit.export_lines(session, org_id=org_id, signer=key):
                yield line.encode()

    name = f"audit-{org or ('org-' + str(org_id) if org_id else 'instance')}.jsonl"
    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/audit/checkpoints", status_code=201, response_model=AuditCheckpointRead)
def create_checkpoint(actor: Actor, db: Db, settings: AppSettings, org: OrgSlug = None) -> AuditCheckpointRead:
    """Sign the chain's last event now (the server also does so every 1,000 events)."""

    def work(session: Session) -> AuditCheckpointRead:
        org_id = _chain_org(session, actor, org)
        signed = audit.checkpoint(session, org_id=org_id, signer=signer(settings))
        if signed is None:
            raise Conflict("the audit log has no events to sign yet")
        return AuditCheckpointRead(**audit.checkpoint_fields(signed))

    return write(db, work)
