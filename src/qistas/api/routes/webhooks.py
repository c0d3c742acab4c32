"""Project webhooks, their delivery log and re-sends; the key that signs callbacks."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, AppSettings, Before, Db, Id, Limit
from qistas.api.idempotency import IDEMPOTENT
from qistas.api.schemas.webhooks import CallbackSecret, DeliveryPage, DeliveryRead, WebhookCreate, WebhookRead
from qistas.db.models import Delivery, Project, User, Webhook
from qistas.db.unit_of_work import write
from qistas.domain import audit, outbox, signing, webhooks
from qistas.domain.destinations import Policy
from qistas.domain.sealing import Keyring
from qistas.policies import ensure_customer_access

router = APIRouter(tags=["webhooks"])


def webhook_read(hook: Webhook, *, secret: str | None = None) -> WebhookRead:
    return WebhookRead(id=hook.id, project_id=hook.project_id, url=hook.url, events=hook.events,
                       created_at=hook.created_at, secret=secret)


def delivery_read(d: Delivery) -> DeliveryRead:
    return DeliveryRead(
        id=d.id, event_id=d.event_id, event=d.event, kind=d.kind, webhook_id=d.webhook_id, url=d.url,
        status=d.status, attempts=d.attempts, next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_attempt_at=d.last_attempt_at, last_status_code=d.last_status_code, last_error=d.last_error,
        created_at=d.created_at, delivered_at=d.delivered_at, payload=d.payload,
    )


@router.post("/projects/{project_id}/webhooks", status_code=201, response_model=WebhookRead, dependencies=[IDEMPOTENT])
def create_webhook(project_id: Id, body: WebhookCreate, actor: Actor, db: Db, settings: AppSettings) -> WebhookRead:
    """Subscribe a URL to events; the answer carries the signing secret, shown only here."""

    def work(session: Session) -> WebhookRead:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        hook, secret = webhooks.create_webhook(session, project=project, url=body.url, events=body.events,
                                               policy=Policy.from_settings(settings),
                                               keyring=Keyring.from_settings(settings))
        audit.record(session, actor=actor, action="webhook.create", object_type="webhook", object_id=hook.id,
                     org_id=project.org_id, details={"url": hook.url, "events": hook.events})
        return webhook_read(hook, secret=secret)

    return write(db, work)


@router.get("/projects/{project_id}/webhooks", response_model=list[WebhookRead])
def list_webhooks(project_id: Id, actor: Actor, db: Db) -> list[WebhookRead]:
    def work(session: Session) -> list[WebhookRead]:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        audit.record(session, actor=actor, action="webhooks.read", object_type="project", object_id=project.id,
                     org_id=project.org_id)
        return [webhook_read(h) for h in webhooks.list_webhooks(session, project=project)]

    return write(db, work)


@router.delete("/projects/{project_id}/webhooks/{webhook_id}", status_code=204)
def delete_webhook(project_id: Id, webhook_id: Id, actor: Actor, db: Db) -> Response:
    def work(session: Session) -> None:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        webhooks.delete_webhook(session, project=project, webhook_id=webhook_id)
        audit.record(session, actor=actor, action="webhook.delete", object_type="webhook", object_id=webhook_id,
                     org_id=project.org_id)

    write(db, work)
    return Response(status_code=204)


def _page(session: Session, actor: User, project: Project, webhook_id: int | None, before: int | None,
          limit: int) -> DeliveryPage:
    found = webhooks.deliveries(session, project=project, webhook_id=webhook_id, before=before, limit=limit)
    audit.record(session, actor=actor, action="deliveries.read", object_type="project", object_id=project.id,
                 org_id=project.org_id, details={"webhook": webhook_id, "count": len(found)})
    return DeliveryPage(items=[delivery_read(d) for d in found],
                        next=found[-1].id if len(found) == limit else None)


@router.get("/projects/{project_id}/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage)
def webhook_deliveries(project_id: Id, webhook_id: Id, actor: Actor, db: Db, limit: Limit,
                       before: Before = None) -> DeliveryPage:
    """The delivery log of one webhook, newest first."""
    def work(session: Session) -> DeliveryPage:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        webhooks.get_webhook(session, project=project, webhook_id=webhook_id)
        return _page(session, actor, project, webhook_id, before, limit)

    return write(db, work)


@router.get("/projects/{project_id}/deliveries", response_model=DeliveryPage)
def project_deliveries(project_id: Id, actor: Actor, db: Db, limit: Limit,
                       before: Before = None) -> DeliveryPage:
    """Every delivery of the project, webhooks and batch / task callbacks, newest first."""
    return write(db, lambda session: _page(session, actor, ensure_customer_access(
        actor, session.get(Project, project_id)), None, before, limit))


@router.post("/projects/{project_id}/deliveries/{delivery_id}/resend", status_code=202,
             response_model=DeliveryRead)
def resend(project_id: Id, delivery_id: Id, actor: Actor, db: Db) -> DeliveryRead:
    """Queue a delivery again (same event id, so receivers can tell it is a repeat)."""

    def work(session: Session) -> DeliveryRead:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        original = webhooks.get_delivery(session, project=project, delivery_id=delivery_id)
        copy = outbox.resend(session, delivery=original)
        audit.record(session, actor=actor, action="delivery.resend", object_type="delivery", object_id=copy.id,
                     org_id=project.org_id, details={"of": original.id})
        return delivery_read(copy)

    return write(db, work)


@router.get("/projects/{project_id}/callback-secret", response_model=CallbackSecret)
def callback_secret(project_id: Id, actor: Actor, db: Db, settings: AppSettings) -> CallbackSecret:
    """The key that signs batch and task ``callback_url`` deliveries of this project."""
    def work(session: Session) -> Project:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        audit.record(session, actor=actor, action="callback_secret.read", object_type="project",
                     object_id=project.id, org_id=project.org_id)
        return project

    project = write(db, work)
    return CallbackSecret(secret=signing.callback_secret(settings.secret_key or "", project.id))
