"""The audit log in the console: an organization's owners read their organization's chain,
admins any organization's (``?org=``) or the instance's own. Newest events first, filtered
like ``GET /api/v1/audit`` and paged by ``seq``; the page links the log's export and the
public key that verify it (``qistas audit verify``). Reading the page is recorded like
reading the log through the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRouter
from sqlalchemy.orm import Session

from qistas.api.deps import MAX_ID, AppSettings, Db
from qistas.db.unit_of_work import write
from qistas.domain import audit, users
from qistas.domain.audit_chain import Signer
from qistas.errors import Invalid
from qistas.policies import ensure_audit_reader, ensure_org_reachable, is_admin
from qistas.web.pages.common import PageUser, render, translator
from qistas.web.pages.forms import field_errors

router = APIRouter(include_in_schema=False)

PAGE = 50
TEXT_FILTERS = {"org": 64, "action": 64, "actor": 64, "object_type": 32}  # the API's bounds
FILTERS = (*TEXT_FILTERS, "object_id", "since", "until")


@dataclass
class Query:
    """The page's filters as typed, and as the domain reads them."""

    values: dict[str, str]
    where: audit.EventFilter = field(default_factory=audit.EventFilter)
    before: int | None = None
    after: int | None = None


def _seq(raw: str, name: str) -> int:
    if not raw.isdigit() or not 0 <= int(raw) <= MAX_ID:
        raise Invalid(f"{name} must be an event number", details={"field": name}, reason="int_parsing")
    return int(raw)


def _day(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"{name} must be a date (2026-01-31)", details={"field": name}, reason="date_parsing") from None


def parse_query(params: dict[str, str]) -> Query:
    """The filters from the address; the first bad one is ``Invalid`` naming it. ``until`` is a
    whole day: events up to its end (UTC)."""
    values = {name: params.get(name, "").strip() for name in FILTERS}
    for name, bound in TEXT_FILTERS.items():
        if len(values[name]) > bound:
            raise Invalid(f"{name} is longer than {bound} characters", details={"field": name},
                          reason="string_too_long", params={"max_length": bound})
    since = _day(values["since"], "since") if values["since"] else None
    until = _day(values["until"], "until") if values["until"] else None
    where = audit.EventFilter(
        action=values["action"] or None, actor=values["actor"] or None, object_type=values["object_type"] or None,
        object_id=_seq(values["object_id"], "object_id") if values["object_id"] else None,
        since=datetime.combine(since, time(), UTC) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), UTC) if until else None)
    before = _seq(params["before"], "before") if params.get("before") else None
    after = _seq(params["after"], "after") if params.get("after") and before is None else None
    return Query(values=values, where=where, before=before, after=after)


def _address(values: dict[str, str], **cursor: int) -> str:
    kept = {k: v for k, v in values.items() if v}
    return "/console/audit?" + urlencode({**kept, **{k: str(v) for k, v in cursor.items()}})


@router.get("/console/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: PageUser, db: Db, settings: AppSettings) -> HTMLResponse:
    t = translator(request)
    ensure_audit_reader(user)
    try:
        query = parse_query(dict(request.query_params))
    except Invalid as exc:
        values = {name: request.query_params.get(name, "")[:200] for name in FILTERS}
        return render(request, "console_audit.html", status=422, title=t("auditlog.title"), admin=is_admin(user),
                      values=values, errors=field_errors(t, [exc], lambda name: name), events=[])

    def work(session: Session) -> dict[str, Any]:
        org = query.values["org"]
        org_id = (ensure_org_reachable(user, users.find_org(session, org), org).id if org and is_admin(user)
                  else None if is_admin(user) else user.org_id)
        audit.record(session, actor=user, action="audit.read", object_type="org", object_id=org_id, org_id=org_id,
                     details={"via": "console"})
        audit.link_chain(session, org_id=org_id)
        if query.after is not None:  # newer events: the next ones in chain order
            page = audit.events_page(session, org_id=org_id, after=query.after, limit=PAGE, where=query.where)
        else:
            page = audit.events_page(session, org_id=org_id, after=None, before=query.before or MAX_ID,
                                     limit=PAGE, where=query.where)
        signed = audit.last_checkpoint(session, org_id=org_id)
        return {"events": [audit.event_fields(e) for e in reversed(page)],
                "checkpoint": audit.checkpoint_fields(signed) if signed is not None else None,
                "org": org if org and is_admin(user) else None}

    found = write(db, work)
    events = found["events"]
    newest, oldest = (events[0]["seq"], events[-1]["seq"]) if events else (None, None)
    values = query.values
    # Older: before the last shown; newer: after the first shown (none on the first page).
    older = _address(values, before=oldest) if oldest is not None and len(events) == PAGE else None
    newer = (_address(values, after=newest) if newest is not None and (query.before or query.after) else None)
    export = "/api/v1/audit/export" + ("?" + urlencode({"org": found["org"]}) if found["org"] else "")
    return render(request, "console_audit.html", title=t("auditlog.title"), admin=is_admin(user), values=values,
                  errors={}, events=events, checkpoint=found["checkpoint"], older=older, newer=newer, export=export,
                  public_key=Signer.from_secret(settings.secret_key or "").public_key)
