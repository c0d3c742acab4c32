"""Append-only audit trail of who read or changed customer data."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from qistas.db.models import AuditEvent, User


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: int | None,
    org_id: int | None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEvent(
            actor_id=actor.id if actor else None,
            org_id=org_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            details=details,
        )
    )
