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
from qistas.domain.users import TokenCache
from qistas.errors import Invalid, Unauthorized

# Ids are 64-bit integers on both databases: a larger number in a URL is refused here, since
# the drivers cannot even bind it (a 500 from SQLite's OverflowError or PostgreSQL's range check).
MAX_ID = 2**63 - 1


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
    """The user behind the bearer token (or the browser session); 401 without one."""
    if bearer_token(request) is None:
        return actor_in(None, request)
    with db.reader() as session:
        return actor_in(session, request)


def ensure_credentials(request: Request) -> None:
    if bearer_token(request) is None and getattr(request.state, "session_user", None) is None:
        raise Unauthorized("a valid bearer token is required")


async def credentials(request: Request) -> Request:
    """The request, once it carries credentials: a missing token is 401 before any body check.

    For routes that resolve the actor inside their own transaction (``actor_in``).
    """
    ensure_credentials(request)
    return request


def actor_in(session: Session | None, request: Request) -> User:
    """The acting user, looked up in the caller's own transaction.

    The annotation loop's routes call this inside their write transaction, so a request
    costs one transaction and one trip to the thread pool instead of two.
    """
    token = bearer_token(request)
    user: User | None = None
    if token is not None:
        if session is not None:
            tokens: TokenCache = request.app.state.tokens
            user = tokens.user(session, token)
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
