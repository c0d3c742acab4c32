"""Signed media URLs answered ahead of the middleware: the common case only.

An annotation page fetches its task's image as the lease is taken, so each answer of an image
task costs one more request. Through the whole stack (the browser session's cookie parsed and
looked up, the request limits, the body limit, the error middleware, routing and FastAPI's
parameter handling) that request cost about as much server CPU as the take itself: with an image
per task, 32 annotators' pace fell by a third (``benchmarks/media.py --serve-rounds``).

A signed URL carries its own authority: the signature, its expiry and the lease it was handed
out with. So ``SignedMedia`` sits just inside ``RequestContext`` (the request id, the log line
and the metrics stay) and answers a ``GET`` of ``/api/v1/media/{sha256}?scope=..&expires=..
&sig=..`` itself when everything is in order: the signature matches and is live, the lease is
live, and the file is a small one on local storage, asked for whole. Each lease may fetch at the
per-address rate (``QISTAS_RATE_LIMIT_PER_ADDRESS``, and its burst): a link copied out of the
page is limited by its lease, not by the address of an office full of annotators. Anything else
(a bad or expired signature, an ended lease, a ``Range``, a large file or one in object
storage, a lease over its rate, the database away) goes on to the route, which answers it
exactly as before, in the one error shape and under the usual limits.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Receive, Scope, Send

from qistas.api.routes.media import media_headers, small_file
from qistas.api.throttle import Buckets
from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read_now
from qistas.domain import media
from qistas.domain.mediastore import MediaStore, blob_key
from qistas.errors import QistasError
from qistas.web.session import SECURITY_HEADERS

QUERY = frozenset({"scope", "expires", "sig"})


class SignedMedia:
    def __init__(self, app: ASGIApp, *, settings: Settings, database: Database, store: MediaStore,
                 route: Any, path: str) -> None:
        self.app = app
        self.db = database
        self.store = store
        self.route = route  # the route it answers for, named in the metrics and the log line
        self.path = re.compile(re.escape(path.removesuffix("{sha256}")) + "([0-9a-f]{64})")
        self.keys = [settings.secret_key or "", *settings.previous_keys]
        self.max_age = settings.media_url_seconds
        self.leases = Buckets(settings.rate_limit_per_address, settings.rate_limit_per_address_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and (match := self.path.fullmatch(scope["path"])):
            answer = await self._answer(scope, match.group(1))
            if answer is not None:
                headers, body = answer
                scope["route"] = self.route
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, sha256: str) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        """The response's headers and body, or None for the route to answer."""
        if any(name == b"range" for name, _ in scope["headers"]):
            return None
        try:
            query = dict(parse_qsl(scope["query_string"].decode("ascii"), strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            return None
        if query.keys() != QUERY or not query["expires"].isdigit() or len(query["expires"]) > 12 \
                or len(query["scope"]) > 32 or len(query["sig"]) > 64:
            return None
        lease, expires, sig = query["scope"], int(query["expires"]), query["sig"]
        now = utcnow()
        try:
            media.verify(self.keys, sha256=sha256, scope=lease, expires=expires, sig=sig, now=now)
            if self.leases.take(lease, time.monotonic()) > 0:
                return None
            found = await read_now(self.db, lambda s: media.leased_media(s, sha256=sha256, scope=lease, now=now))
        except (QistasError, DBAPIError):
            return None
        body = small_file(self.store, blob_key(found.sha256))
        if body is None:
            return None
        headers = [(name.lower().encode(), value.encode("latin-1"))
                   for name, value in media_headers(found.content_type, self.max_age).items()]
        names = {name for name, _ in headers}
        return [
            (b"content-type", found.content_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            (b"accept-ranges", b"bytes"),
            *headers,
            # what the session middleware adds to every answer it passes (web/session.py)
            *((name, value) for name, value in SECURITY_HEADERS if name not in names),
        ], body
