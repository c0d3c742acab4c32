"""Signatures of webhook and callback deliveries.

    Qistas-Signature: t=1700000000,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

The timestamp is signed with the body so a captured delivery cannot be replayed later: a
receiver checks the signature and that ``t`` is recent (docs/delivery.md has the snippet).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "Qistas-Signature"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def callback_secret(secret_key: str, project_id: int) -> str:
    """The key that signs a project's batch and task callbacks (derived, so never stored)."""
    digest = hmac.new(secret_key.encode(), f"qistas-callback:{project_id}".encode(), hashlib.sha256)
    return "cbsec_" + digest.hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, *, now: int, tolerance: int = 300) -> bool:
    """Check a ``Qistas-Signature`` header (what a receiver does; used by our tests)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
