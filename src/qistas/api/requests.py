"""Every request's id, log line and metrics: a plain ASGI middleware, outermost of all.

The id is the caller's ``X-Request-ID`` when that is a short safe token (1 to 64 of
``A-Z a-z 0-9 . _ -``), so a proxy's or a client's id follows the request through; anything
else is ignored and a new id made. The id goes back in the ``X-Request-ID`` response header
(on errors too) and is set in ``logs.request_id`` for every log line written while the
request is handled.

When ``qistas.request`` logs at INFO, each request writes one line: method, route template
(``/api/v1/projects/{project_id}``, never the raw path, which may hold ids or a token in a
query), status, duration and the acting user's id. Not headers, not bodies, not queries.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which runs the app in a second task
and copies every response through a stream: the annotation loop's requests take a millisecond.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Sequence
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qistas import logs
from qistas.api.metrics import UNMATCHED, Metrics

log = logging.getLogger("qistas.request")

HEADER = b"x-request-id"
SAFE_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


def incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("ascii") if SAFE_ID.fullmatch(value) else None
    return None


def new_id() -> str:
    return os.urandom(8).hex()


def route_templates(routes: Sequence[BaseRoute]) -> dict[int, str]:
    """Each route's full path template (``/api/v1/projects/{project_id}``), by the route's id.

    The router leaves the matched route in ``scope["route"]``; a route of an included router
    is there as declared, without the prefix it was included under, so the full template is
    looked up here, built once from the framework's public list of routes with their prefixes.
    """
    return {id(context.original_route): context.path_format for context in iter_route_contexts(routes)
            if isinstance(context.path_format, str)}


class RequestContext:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = route_templates(routes)

    def route_template(self, scope: Scope) -> str:
        """The template of the route that answered; a fixed word when none did (never the raw path)."""
        route: Any = scope.get("route")
        if route is None:
            return UNMATCHED
        return self.templates.get(id(route)) or getattr(route, "path_format", None) or UNMATCHED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope) or new_id()
        header = (HEADER, rid.encode("ascii"))
        status = 500  # what the client gets when the app fails before it answers
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = logs.request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = self.route_template(scope)
            self.metrics.observe_request(method=scope["method"], route=route, status=status, seconds=seconds)
            if log.isEnabledFor(logging.INFO):
                log.info("%s %s %d", scope["method"], route, status, extra={
                    "method": scope["method"], "path": route, "status": status,
                    "duration_ms": round(seconds * 1000, 2), "user_id": scope.get("state", {}).get("user_id"),
                })
            logs.request_id.reset(token)
