"""The ``Idempotency-Key`` header on the API's creating POSTs.

Following draft-ietf-httpapi-idempotency-key-header (and Stripe's API): a client that may
send a request twice (a retry after a timeout, a crashed script run again) sends a key of
its choosing with it. The first request with that key runs; a retry with the same key, from
the same user and with the same request (method, path, query, media type and body), is
answered with the first one's stored answer, replayed with ``Idempotent-Replayed: true``,
and does nothing again. While the first is still running a retry gets 409
(``idempotency_key_in_use``); the same key with a different request gets 422
(``idempotency_key_reused``). Only successful (2xx) answers are kept: after an error the key
is free, and the request may be sent again.

An ASGI middleware, inside the body limit and the browser session (so the user is known),
outside the routes: the row is inserted before the route starts and the answer stored after
it has ended. The routes that take the header declare it with ``IDEMPOTENT``, which also puts
it in the OpenAPI document.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import IO, Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Header
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qistas.api.errors import domain_response, error_response, http_response
from qistas.db.engine import Database
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import idempotency
from qistas.domain.idempotency import MAX_KEY_LENGTH, StoredResponse
from qistas.domain.sealing import Keyring
from qistas.errors import ConfigError, IdempotencyKeyInUse, QistasError

log = logging.getLogger("qistas.api")
HEADER = b"idempotency-key"
REPLAYED = (b"idempotent-replayed", b"true")
SPOOL_IN_MEMORY = 1 << 20
CHUNK = 1 << 16
CLAIM_TRIES = 3


async def idempotency_key(
    key: Annotated[str | None, Header(
        alias="Idempotency-Key", max_length=MAX_KEY_LENGTH,
        description="Any unique string (1 to 255 printable ASCII characters): a retry with the same key and "
        "the same request gets the first answer, and the work is done once (docs/api.md).")] = None,
) -> None:
    """Declares the header; ``Idempotency`` below has done the work before the route runs."""


IDEMPOTENT = Depends(idempotency_key)


class Idempotency:
    def __init__(self, app: ASGIApp, *, db: Database, keyring: Keyring, keep_hours: float,
                 paths: list[re.Pattern[str]]) -> None:
        self.app = app
        self.paths = paths
        self.db = db
        self.keyring = keyring
        self.keep = timedelta(hours=keep_hours)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = _header(scope, HEADER) if scope["type"] == "http" and scope["method"] == "POST" else None
        if raw is None or not any(path.fullmatch(scope["path"]) for path in self.paths):
            await self.app(scope, receive, send)
            return
        user_id = await anyio.to_thread.run_sync(self._caller, scope)
        if user_id is None:  # the route answers 401 (or 403) as without the header
            await self.app(scope, receive, send)
            return
        try:
            key = raw.decode("ascii", errors="replace")
            idempotency.check_key(key)
            body, fingerprint = await _received(scope, receive)
        except QistasError as exc:
            await domain_response(exc)(scope, receive, send)
            return
        except HTTPException as exc:  # over the body limit
            await http_response(exc)(scope, receive, send)
            return
        except ClientDisconnect:
            return
        with body:
            try:
                claimed = await anyio.to_thread.run_sync(partial(
                    self._claim, user_id=user_id, key=key, fingerprint=fingerprint))
            except ConfigError as exc:  # a stored answer sealed with a key this server lacks
                log.error("Idempotency-Key answer not replayed: %s", exc.message)
                await error_response(500, "internal_error", "an unexpected error occurred")(scope, receive, send)
                return
            except QistasError as exc:
                await domain_response(exc)(scope, receive, send)
                return
            if isinstance(claimed, StoredResponse):
                await _replay(claimed)(scope, receive, send)
                return
            await self._run(scope, receive, send, body=body, request_id=claimed)

    def _caller(self, scope: Scope) -> int | None:
        token = _bearer(scope)
        if token is None:
            user = (scope.get("state") or {}).get("session_user")
            return None if user is None else int(user.id)
        with self.db.reader() as session:
            grant = scope["app"].state.tokens.grant(session, token)
        return None if grant is None else int(grant.user.id)

    def _claim(self, *, user_id: int, key: str, fingerprint: str) -> int | StoredResponse:
        """Insert first; when the key is taken, the earlier request decides (see the module doc)."""
        for _ in range(CLAIM_TRIES):
            now = utcnow()
            try:
                return write(self.db, partial(idempotency.begin, user_id=user_id, key=key, fingerprint=fingerprint,
                                              now=now))
            except IntegrityError:
                pass
            found = write(self.db, partial(idempotency.earlier, user_id=user_id, key=key, fingerprint=fingerprint,
                                           kept_since=now - self.keep, keyring=self.keyring))
            if found is not None:
                return found
        raise IdempotencyKeyInUse("a request with this Idempotency-Key is still running; retry once it has answered",
                                  details={"field": "Idempotency-Key"})

    async def _run(self, scope: Scope, receive: Receive, send: Send, *, body: IO[bytes], request_id: int) -> None:
        size = body.seek(0, 2)
        body.seek(0)
        start: Message | None = None
        chunks: list[bytes] = []
        settled = False

        first = True

        async def replay_body() -> Message:
            nonlocal first
            if first or body.tell() < size:
                first = False
                chunk = body.read(CHUNK)
                return {"type": "http.request", "body": chunk, "more_body": body.tell() < size}
            return await receive()  # the body was given whole: what follows is the client leaving

        async def capture(message: Message) -> None:
            nonlocal start, settled
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            answer = b"".join(chunks)
            status = int(start["status"])
            settled = True
            with anyio.CancelScope(shield=True):
                if 200 <= status < 300:
                    await self._store(request_id, status, _header_of(start, b"content-type"), answer)
                else:
                    await anyio.to_thread.run_sync(self._release, request_id)
            await send(start)
            await send({"type": "http.response.body", "body": answer})

        try:
            await self.app(scope, replay_body, capture)
        finally:
            if not settled:  # the route failed before answering, or the client left
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._release, request_id)

    async def _store(self, request_id: int, status: int, content_type: str | None, answer: bytes) -> None:
        stored = StoredResponse(status_code=status, content_type=content_type, body=answer)
        try:
            await anyio.to_thread.run_sync(lambda: write(self.db, partial(
                idempotency.finish, request_id=request_id, response=stored, keyring=self.keyring)))
        except Exception:
            # The work is done and committed: the key stays "running" (409) until it expires
            # rather than let a retry do it twice.
            log.exception("could not store the answer to an Idempotency-Key request")

    def _release(self, request_id: int) -> None:
        write(self.db, partial(idempotency.release, request_id=request_id))


def idempotent_paths(routers: Iterable[APIRouter], prefix: str) -> list[re.Pattern[str]]:
    """The paths of the POST routes that declare ``IDEMPOTENT``, as the router matches them."""
    found = []
    for router in routers:
        for route in router.routes:
            if (isinstance(route, APIRoute) and "POST" in (route.methods or ())
                    and any(d.call is idempotency_key for d in route.dependant.dependencies)):
                found.append(compile_path(prefix + route.path)[0])
    return found


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value)
    return None


def _header_of(message: Message, name: bytes) -> str | None:
    for key, value in message.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _bearer(scope: Scope) -> str | None:
    scheme, _, token = (_header(scope, b"authorization") or b"").decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _received(scope: Scope, receive: Receive) -> tuple[IO[bytes], str]:
    """The whole body, spooled (in memory up to 1 MB), and the request's fingerprint.

    A multipart body's boundary is chosen afresh by the client for every send: it is left out
    of the fingerprint, so a retried upload of the same file matches.
    """
    media, _, params = (_header(scope, b"content-type") or b"").decode("latin-1").partition(";")
    boundary = None
    if media.strip().lower() == "multipart/form-data":
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.lower() == "boundary" and value.strip('"'):
                boundary = value.strip('"').encode("latin-1")
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope.get("root_path", "").encode() + scope["path"].encode(),
                 scope.get("query_string", b""), media.strip().lower().encode()):
        digest.update(len(part).to_bytes(8, "big") + part)
    hasher = _BodyHash(digest, boundary)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - the caller closes it
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            spool.write(chunk)
            hasher.update(chunk)
            if not message.get("more_body", False):
                break
    except BaseException:
        spool.close()
        raise
    hasher.finish()
    return spool, digest.hexdigest()


class _BodyHash:
    """Feeds the body to ``digest`` with every occurrence of ``boundary`` left out."""

    def __init__(self, digest: Any, boundary: bytes | None) -> None:
        self.digest = digest
        self.marker = b"--" + boundary if boundary else None
        self.carry = b""

    def update(self, chunk: bytes) -> None:
        if self.marker is None:
            self.digest.update(chunk)
            return
        buffer = self.carry + chunk
        while (at := buffer.find(self.marker)) >= 0:
            self.digest.update(buffer[:at] + b"\x00boundary\x00")
            buffer = buffer[at + len(self.marker):]
        keep = len(self.marker) - 1
        self.digest.update(buffer[:-keep] if len(buffer) > keep else b"")
        self.carry = buffer[-keep:] if len(buffer) > keep else buffer

    def finish(self) -> None:
        self.digest.update(self.carry)
        self.carry = b""


def _replay(stored: StoredResponse) -> Response:
    response = Response(stored.body, status_code=stored.status_code, media_type=stored.content_type)
    response.raw_headers.append(REPLAYED)
    return response

