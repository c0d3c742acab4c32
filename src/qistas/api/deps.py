"""Request dependencies: settings, database, the acting user, paging and path parameters.

Transactions are the database layer's unit of work (``qistas.db.unit_of_work``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain.users import TokenCache, touch_token
from qistas.errors import Invalid, Unauthorized
from qistas.policies import ensure_scope_permits

# Ids are 64-bit integers on both databases: a larger number in a URL is refused here, since
# the drivers cannot even bind it (a 500 from SQLite's OverflowError or PostgreSQL's range check).
MAX_ID = 2**63 - 1


def cursor_from_text(raw: str | None, *, field: str) -> int | None:
    """A keyset cursor given as text (the pages' query strings): absent, or an id that fits.

    The API's cursors are ``After`` / ``Before`` below; this is the same rule for a page.
    """
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
        raise Invalid(f"{field} must be an id between 0 and {MAX_ID}", details={"field": field})
    return int(raw)


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in
# the thread pool, and a thread hop per dependency is a large share of a short request.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_db(request: Request) -> Database:
    return request.app.state.db


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def current_actor(request: Request, db: Annotated[Database, Depends(get_db)]) -> User:
    """The user behind the bearer token (or the browser session); 401 without one.

    A token whose last use is due to be written (at most once a minute) is written in a
    transaction of its own, after the read.
    """
    if bearer_token(request) is None:
        return actor_in(None, request)
    touch: list[int] = []
    with db.reader() as session:
        actor = actor_in(session, request, due=touch)
    if touch:
        now = utcnow()
        write(db, lambda session: touch_token(session, token_id=touch[0], now=now))
    return actor


def ensure_credentials(request: Request) -> None:
    if bearer_token(request) is None and getattr(request.state, "session_user", None) is None:
        raise Unauthorized("a valid bearer token is required")


async def credentials(request: Request) -> Request:
    """The request, once it carries credentials: a missing token is 401 before any body check.

    For routes that resolve the actor inside their own transaction (``actor_in``).
    """
    ensure_credentials(request)
    return request


def actor_in(session: Session | None, request: Request, *, loop: bool = False,
             due: list[int] | None = None) -> User:
    """The acting user, looked up in the caller's own transaction.

    The annotation loop's routes call this inside their write transaction (``loop=True``), so a
    request costs one transaction and one trip to the thread pool instead of two; a token's
    last use, when due, is written in that same transaction. Other callers pass ``due``, a
    list that receives the token's id when its last use is to be written. A token whose scope
    does not allow the request is refused with 403 (``policies.scope_permits``).
    """
    token = bearer_token(request)
    user: User | None = None
    if token is not None:
        if session is not None:
            tokens: TokenCache = request.app.state.tokens
            grant = tokens.grant(session, token)
            if grant is not None:
                ensure_scope_permits(grant.scope, method=request.method, loop=loop)
                user = grant.user
                if grant.touch:
                    if due is not None:
                        due.append(grant.token_id)
                    elif loop:
                        touch_token(session, token_id=grant.token_id, now=utcnow())
    else:
        session_user = getattr(request.state, "session_user", None)
        if session_user is not None:
            user = session_user
    if user is None:
        raise Unauthorized("a valid bearer token is required" if token is None else "invalid or revoked token")
    request.state.user_id = user.id  # for the request's log line (api.requests)
    return user


_QUERY_NAMES: dict[int, tuple[Any, frozenset[str]]] = {}


def declared_query(route: Any) -> frozenset[str]:
    """The query parameters a route reads, its dependencies' included (cached per route)."""
    cached = _QUERY_NAMES.get(id(route))
    if cached is not None and cached[0] is route:
        return cached[1]
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(field.alias for field in dependant.query_params)
        pending.extend(dependant.dependencies)
    found = frozenset(names)
    _QUERY_NAMES[id(route)] = (route, found)
    return found


async def known_query(request: Request) -> None:
    """A GET of the API refuses a query parameter its path does not read (422 naming it).

    A misspelt filter (``?uniqueid=``, ``?statuss=``) would otherwise be ignored and the
    answer would look like a real, unfiltered one. Installed once for every API router
    (``create_app``); credentials are still checked first.
    """
    if request.method != "GET" or not request.query_params:
        return
    route = request.scope.get("route")
    if getattr(route, "dependant", None) is None:
        return
    allowed = declared_query(route)
    for name in request.query_params:
        if name not in allowed:
            ensure_credentials(request)
            takes = ", ".join(sorted(allowed)) or "no query parameters"
            raise Invalid(f"unknown query parameter {name!r}; this path takes {takes}", details={"field": name})


async def page_limit(
    settings: Annotated[Settings, Depends(get_settings)],
    limit: Annotated[int | None, Query(ge=1, description="page size; capped at the server's maximum")] = None,
) -> int:
    if limit is None:
        return settings.default_page_size
    return min(limit, settings.max_page_size)


Actor = Annotated[User, Depends(current_actor)]
Credentials = Annotated[Request, Depends(credentials)]
KnownQuery = Depends(known_query)
Db = Annotated[Database, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Limit = Annotated[int, Depends(page_limit)]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
After = Annotated[int | None, Query(ge=0, le=MAX_ID, description="the previous page's `next`")]
Before = Annotated[int | None, Query(ge=0, le=MAX_ID, description="the previous page's `next`")]
