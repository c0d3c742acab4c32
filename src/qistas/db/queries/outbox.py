"""The outbox's statement run at every completion: the project's active webhooks."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, select

from qistas.db.models import Webhook, table
from qistas.db.prepared import Prepared

_hooks = table(Webhook).c


class _Hook(NamedTuple):
    id: int
    url: str
    events: list[str]


ACTIVE_HOOKS = Prepared(
    select(_hooks.id, _hooks.url, _hooks.events).where(
        _hooks.project_id == bindparam("project_id"), _hooks.is_active.is_(True)
    ),
    _Hook,
)
