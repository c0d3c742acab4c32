"""Browser sessions on every request, and the security headers of every response.

One ASGI middleware, because both must wrap the API as well as the pages:

* a ``qistas_session`` cookie is resolved to its user, who is put in ``request.state``
  (``session_user``) where ``api.deps.current_actor`` finds it, so the workspace's scripts
  call the JSON API with the cookie;
* an unsafe API request authenticated by the cookie (no bearer token) must carry the
  session's CSRF token in ``X-CSRF-Token``, or it is refused with 403 before any handler runs;
* every response gets a content security policy without inline script, and friends.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from typing import Any

import anyio.to_thread
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qistas.api.errors import DATABASE_UNAVAILABLE, RETRY_AFTER_UNAVAILABLE, error_body
from qistas.db.engine import Database, is_unreachable
from qistas.db.types import utcnow
from qistas.domain.web_sessions import resolve

COOKIE = "qistas_session"
CSRF_HEADER = b"x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Images and recordings of tasks may live on the customer's own servers (when not imported as
# media), hence http:/https: for img-src and media-src;
# nothing else leaves the origin, and no script, style or frame comes from anywhere else.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https: http:; "
    "media-src 'self' blob: https: http:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def cookie_value(headers: dict[bytes, bytes], name: str) -> str | None:
    raw = headers.get(b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except Exception:  # a malformed Cookie header is treated as no cookie
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


class SessionMiddleware:
    def __init__(self, app: ASGIApp, *, database: Database) -> None:
        self.app = app
        self.db = database

    def _resolve(self, cookie: str) -> Any:
        with self.db.reader() as session:
            return resolve(session, cookie=cookie, now=utcnow())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        path: str = scope.get("path", "")
        headers = dict(scope.get("headers") or [])
        cookie = None if path.startswith("/static/") else cookie_value(headers, COOKIE)
        if cookie:
            try:
                found = await anyio.to_thread.run_sync(self._resolve, cookie)
            except DBAPIError as exc:
                if not is_unreachable(exc):
                    raise
                # Outside the routes' exception handlers: answered here, in the one shape.
                await _refuse(send_with_headers, 503, "unavailable", DATABASE_UNAVAILABLE,
                              [(b"retry-after", RETRY_AFTER_UNAVAILABLE.encode())])
                return
            if found is not None:
                user, csrf = found
                bearer = headers.get(b"authorization", b"").lower().startswith(b"bearer ")
                unsafe = scope["method"] not in SAFE_METHODS
                if path.startswith("/api/") and unsafe and not bearer:
                    given = headers.get(CSRF_HEADER, b"").decode("latin-1")
                    if not hmac.compare_digest(given, csrf):
                        await _refuse_csrf(send_with_headers)
                        return
                state = scope.setdefault("state", {})
                state["session_user"] = user
                state["csrf_token"] = csrf
                state["session_cookie"] = cookie
        await self.app(scope, receive, send_with_headers)


async def _refuse_csrf(send: Send) -> None:
    await _refuse(send, 403, "csrf_failed", "the X-CSRF-Token header is missing or wrong")


async def _refuse(send: Send, status: int, code: str, message: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
