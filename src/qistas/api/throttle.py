"""Request limits per credential, per organization and per client address, checked before a
request reaches a route (and before its body is read), so one tenant cannot take the server.

* A token bucket per credential: each API token, each browser session's user, and, for a
  request with neither (sign-in, static files) or with an unknown token, each client address
  (``scope["client"]``, which uvicorn takes from X-Forwarded-For only when the peer is one of
  ``QISTAS_FORWARDED_ALLOW_IPS``).
* A token bucket per organization, shared by all its people's tokens and browser sessions.
  The annotation loop (take, submit, skip, renew) is paced by people, each under their own
  token's bucket, and does not draw on it: an organization's many annotators never use up
  the budget of its scripts, nor its scripts theirs.
* A cap on an organization's requests in flight at once (by default half the process's
  threads), the annotation loop's short requests excepted. Those beyond it wait their turn
  on the event loop (cheap) for up to ``QISTAS_RATE_LIMIT_WAIT_SECONDS``; so a tenant's
  heavy requests (listing, importing, exporting) hold at most that many of the server's
  threads, and the other tenants' requests find threads free.

Over a limit: 429 ``too_many_requests`` in the one error shape, with ``Retry-After`` and
``details.retry_after`` (seconds) and ``details.limit`` (``token``, ``organization``,
``address`` or ``in_flight``). Shared-workforce annotators and admins belong to no
organization: their own token's bucket is their limit.

The state lives in the server process, in the event loop's thread (no lock needed). With N
server processes behind a balancer each allows the configured rates, so the instance allows
N times them: divide by N to size them (docs/settings.md).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Hashable
from dataclasses import dataclass

import anyio.to_thread
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Receive, Scope, Send

from qistas.api.errors import error_body
from qistas.config import Settings
from qistas.db.engine import Database
from qistas.domain.security import hash_token
from qistas.domain.users import TokenHolder, token_holder

# The annotation loop's paths (api/routes/work.py): exempt from the organization's bucket
# and in-flight cap (each annotator's own token bucket paces them).
LOOP_PATH = re.compile(r"^/api/v1/(?:projects/\d+/assignments|assignments/\d+/(?:submit|skip|renew))$")
UNLIMITED_PATHS = ("/healthz",)
HOLDER_SECONDS = 60.0  # how long the holder of a token is remembered
HOLDER_CAPACITY = 10_000


class Buckets:
    """Token buckets by key: ``rate`` requests a second on average, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: int, capacity: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.capacity = capacity
        self._state: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens left, when)

    def take(self, key: Hashable, now: float) -> float:
        """Spend one token of ``key``'s bucket: 0 when the request may go, else the seconds
        until one is there (nothing is spent then)."""
        if self.rate <= 0:
            return 0.0
        left, at = self._state.get(key, (self.burst, now))
        left = min(self.burst, left + (now - at) * self.rate)
        if left < 1:
            return (1 - left) / self.rate
        if key not in self._state and len(self._state) >= self.capacity:
            self._forget_full(now)
        self._state[key] = (left - 1, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have filled up again: they are the same as no entry."""
        self._state = {k: (left, at) for k, (left, at) in self._state.items()
                       if left + (now - at) * self.rate < self.burst}
        if len(self._state) >= self.capacity:  # a flood of distinct keys: start over
            self._state.clear()


class InFlight:
    """At most ``cap`` requests of one organization at once; later ones wait in turn."""

    def __init__(self, cap: int, wait_seconds: float) -> None:
        self.cap = cap
        self.wait_seconds = wait_seconds
        self._gates: dict[int, asyncio.Semaphore] = {}

    def gate(self, org_id: int) -> asyncio.Semaphore | None:
        if self.cap <= 0:
            return None
        found = self._gates.get(org_id)
        if found is None:
            found = self._gates[org_id] = asyncio.Semaphore(self.cap)
        return found


@dataclass(frozen=True)
class Refusal:
    limit: str
    retry_after: int


class RequestLimits:
    """The ASGI middleware; installed inside the session middleware, which names the user of a
    browser session (``state["session_user"]``), and outside the body limit and the routes."""

    def __init__(self, app: ASGIApp, *, settings: Settings, database: Database, threads: int) -> None:
        self.app = app
        self.db = database
        self.credentials = Buckets(settings.rate_limit_per_token, settings.rate_limit_per_token_burst)
        self.orgs = Buckets(settings.rate_limit_per_org, settings.rate_limit_per_org_burst)
        self.addresses = Buckets(settings.rate_limit_per_address, settings.rate_limit_per_address_burst)
        cap = settings.max_requests_in_flight_per_org
        self.in_flight = InFlight(max(1, threads // 2) if cap is None else cap, settings.rate_limit_wait_seconds)
        self._holders: dict[str, tuple[float, TokenHolder]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        org_id, refusal = await self._check(scope, now)
        loop = LOOP_PATH.match(scope.get("path", "")) is not None
        if refusal is None and org_id is not None and not loop:
            refusal = _refusal("organization", self.orgs.take(org_id, now))
        if refusal is not None:
            await _refuse(send, refusal)
            return
        gate = self.in_flight.gate(org_id) if org_id is not None and not loop else None
        if gate is None:
            await self.app(scope, receive, send)
            return
        if gate.locked():
            try:
                async with asyncio.timeout(self.in_flight.wait_seconds):
                    await gate.acquire()
            except TimeoutError:
                await _refuse(send, Refusal("in_flight", 1))
                return
        else:
            await gate.acquire()  # free: returns at once
        try:
            await self.app(scope, receive, send)
        finally:
            gate.release()

    async def _check(self, scope: Scope, now: float) -> tuple[int | None, Refusal | None]:
        """The organization the request counts against, and a refusal by its credential's bucket."""
        token = _bearer(scope)
        if token is not None:
            digest = hash_token(token)
            known = self._holders.get(digest)
            holder = known[1] if known is not None and known[0] > now else await self._look_up(digest, now)
            if holder is not None:
                return holder.org_id, _refusal("token", self.credentials.take(("token", digest), now))
            # No one's token (the route answers 401): guessing tokens is paid for by the address.
            return None, _refusal("address", self.addresses.take(_address(scope), now))
        user = (scope.get("state") or {}).get("session_user")
        if user is not None:
            return user.org_id, _refusal("token", self.credentials.take(("user", user.id), now))
        return None, _refusal("address", self.addresses.take(_address(scope), now))

    async def _look_up(self, digest: str, now: float) -> TokenHolder | None:
        def read() -> TokenHolder | None:
            with self.db.reader() as session:
                return token_holder(session, token_hash=digest)

        try:
            holder = await anyio.to_thread.run_sync(read)
        except DBAPIError:
            return None  # the database is away: the route answers 503 in the one shape
        if holder is not None:
            if len(self._holders) >= HOLDER_CAPACITY:
                self._holders.clear()
            self._holders[digest] = (now + HOLDER_SECONDS, holder)
        return holder


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def _refusal(limit: str, wait: float) -> Refusal | None:
    return None if wait <= 0 else Refusal(limit, max(1, math.ceil(wait)))


async def _refuse(send: Send, refusal: Refusal) -> None:
    message = f"too many requests ({refusal.limit} limit); try again in {refusal.retry_after} s"
    body = json.dumps(error_body("too_many_requests", message,
                                 {"limit": refusal.limit, "retry_after": refusal.retry_after})).encode()
    await send({"type": "http.response.start", "status": 429, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(refusal.retry_after).encode())]})
    await send({"type": "http.response.body", "body": body})
