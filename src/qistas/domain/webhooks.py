"""A project's webhooks and their delivery log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from qistas.db.models import Delivery, Project, Webhook
from qistas.domain import signing
from qistas.domain.destinations import Policy, resolve
from qistas.domain.outbox import EVENTS
from qistas.domain.sealing import WEBHOOK_SECRET, Keyring
from qistas.errors import Invalid, NotFound

MAX_WEBHOOKS = 20


def create_webhook(session: Session, *, project: Project, url: str, events: list[str], policy: Policy,
                   keyring: Keyring) -> tuple[Webhook, str]:
    """The new webhook and its signing secret: shown once, stored sealed."""
    if not events:
        raise Invalid("events must name at least one event", details={"field": "events"})
    for i, event in enumerate(events):
        if event not in EVENTS:
            raise Invalid(f"unknown event {event!r}; events are {', '.join(EVENTS)}", details={"field": f"events.{i}"})
    resolve(url, policy, field_name="url")
    active = session.scalars(
        select(Webhook.id).where(Webhook.project_id == project.id, Webhook.is_active.is_(True))
    ).all()
    if len(active) >= MAX_WEBHOOKS:
        raise Invalid(f"a project has at most {MAX_WEBHOOKS} webhooks", details={"field": "url"})
    secret = signing.new_secret()
    hook = Webhook(project_id=project.id, url=url, events=list(dict.fromkeys(events)),
                   secret_sealed=keyring.seal(secret.encode(), purpose=WEBHOOK_SECRET), is_active=True)
    session.add(hook)
    session.flush()
    return hook, secret


def signing_secret(hook: Webhook, *, keyring: Keyring) -> str:
    return keyring.open(hook.secret_sealed, purpose=WEBHOOK_SECRET).decode()


def reseal_secrets(session: Session, *, keyring: Keyring) -> int:
    """Seal again with the current key every secret sealed with a previous one; how many."""
    changed = 0
    for hook in session.scalars(select(Webhook).order_by(Webhook.id)):
        if not keyring.is_current(hook.secret_sealed):
            hook.secret_sealed = keyring.seal(keyring.open(hook.secret_sealed, purpose=WEBHOOK_SECRET),
                                              purpose=WEBHOOK_SECRET)
            changed += 1
    session.flush()
    return changed


def list_webhooks(session: Session, *, project: Project) -> list[Webhook]:
    query = select(Webhook).where(Webhook.project_id == project.id, Webhook.is_active.is_(True))
    return list(session.scalars(query.order_by(Webhook.id)))


def get_webhook(session: Session, *, project: Project, webhook_id: int) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.project_id != project.id or not hook.is_active:
        raise NotFound("webhook not found")
    return hook


def delete_webhook(session: Session, *, project: Project, webhook_id: int) -> None:
    """Deactivate: its delivery log stays readable; pending deliveries are not sent."""
    get_webhook(session, project=project, webhook_id=webhook_id).is_active = False
    session.flush()


def deliveries(
    session: Session, *, project: Project, webhook_id: int | None, before: int | None, limit: int
) -> list[Delivery]:
    """Newest first."""
    query = select(Delivery).where(Delivery.project_id == project.id)
    if webhook_id is not None:
        query = query.where(Delivery.webhook_id == webhook_id)
    if before is not None:
        query = query.where(Delivery.id < before)
    return list(session.scalars(query.order_by(Delivery.id.desc()).limit(limit)))


def get_delivery(session: Session, *, project: Project, delivery_id: int) -> Delivery:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.project_id != project.id:
        raise NotFound("delivery not found")
    return delivery
