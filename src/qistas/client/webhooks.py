"""Webhooks from the SDK, and ``verify_signature`` for the receiving end."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from qistas.client.models import Delivery, Webhook, parse

if TYPE_CHECKING:
    from qistas.client.client import Client


def verify_signature(secret: str, body: bytes, header: str, *, tolerance: int = 300,
                     now: float | None = None) -> bool:
    """Check a ``Qistas-Signature: t=...,v1=...`` header against the raw request body."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class Webhooks:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, project_id: int, url: str, events: list[str]) -> Webhook:
        """The answer's ``secret`` is shown only now: keep it to verify deliveries."""
        body: dict[str, Any] = {"url": url, "events": events}
        return parse(Webhook, self._client.request("POST", f"/projects/{project_id}/webhooks", json=body).json())

    def list(self, project_id: int) -> list[Webhook]:
        return [parse(Webhook, w) for w in self._client.request("GET", f"/projects/{project_id}/webhooks").json()]

    def delete(self, project_id: int, webhook_id: int) -> None:
        self._client.request("DELETE", f"/projects/{project_id}/webhooks/{webhook_id}")

    def deliveries(self, project_id: int, webhook_id: int | None = None, *, page_size: int = 100) -> Iterator[Delivery]:
        """Newest first; without ``webhook_id``, batch and task callbacks too."""
        path = (f"/projects/{project_id}/webhooks/{webhook_id}/deliveries" if webhook_id is not None
                else f"/projects/{project_id}/deliveries")
        before: int | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if before is not None:
                params["before"] = before
            page = self._client.request("GET", path, params=params).json()
            for item in page["items"]:
                yield parse(Delivery, item)
            if page["next"] is None:
                return
            before = page["next"]

    def resend(self, project_id: int, delivery_id: int) -> Delivery:
        answer = self._client.request("POST", f"/projects/{project_id}/deliveries/{delivery_id}/resend")
        return parse(Delivery, answer.json())

    def callback_secret(self, project_id: int) -> str:
        """The key that signs this project's batch and task callbacks."""
        return self._client.request("GET", f"/projects/{project_id}/callback-secret").json()["secret"]
