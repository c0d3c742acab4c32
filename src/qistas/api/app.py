"""The ASGI application: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp

from qistas import __version__, web
from qistas.api import docs, errors, health, metrics
from qistas.api.deps import KnownQuery
from qistas.api.idempotency import Idempotency, idempotent_paths
from qistas.api.import_processes import ImportProcesses
from qistas.api.limits import BodyLimit
from qistas.api.metrics import Metrics
from qistas.api.report_processes import ReportProcesses
from qistas.api.requests import RequestContext
from qistas.api.routes import (
    accounts,
    audit,
    exams,
    exports,
    fraud,
    generation,
    media,
    models,
    pay,
    projects,
    quality,
    reviews,
    tasks,
    webhooks,
    work,
    workforce,
)
from qistas.api.signed_media import SignedMedia
from qistas.api.throttle import RequestLimits
from qistas.config import Settings, get_settings
from qistas.db.engine import Database, is_sqlite
from qistas.db.unit_of_work import INLINE_BEGIN, postgres_loop_inline
from qistas.domain.mediastore import store_for
from qistas.domain.sealing import Keyring
from qistas.domain.sign_in import PasswordGate
from qistas.domain.users import TokenCache
from qistas.serving import join_connection_shares, serve_workers, usable_cores
from qistas.workers import start_workers

API_PREFIX = "/api/v1"
SQLITE_THREADS = 4  # SQLite writes one transaction at a time
SERVER_THREADS = 8  # PostgreSQL: below the connection pool's 10


class Qistas(FastAPI):
    """FastAPI with ``RequestContext`` around everything, the error middleware included: a
    500 carries the request id too, and is counted and logged like any other answer. Just
    inside it, ``SignedMedia`` answers the common case of a signed media URL."""

    def build_middleware_stack(self) -> ASGIApp:
        # Built on the first request, once every route is in place.
        media_path = f"{API_PREFIX}/media/{{sha256}}"
        media_route = next(context.original_route for context in iter_route_contexts(self.routes)
                           if context.path_format == media_path)
        stack = SignedMedia(super().build_middleware_stack(), settings=self.state.settings, database=self.state.db,
                            store=self.state.media_store, route=media_route, path=media_path)
        return RequestContext(stack, metrics=self.state.metrics, routes=self.routes)


def create_app(settings: Settings | None = None, database: Database | None = None, *,
               processes: int = 1) -> FastAPI:
    """The app; ``processes``: how many server processes run it on this machine, this one
    included (``QISTAS_POSTGRES_INLINE_LOOP``'s ``auto`` weighs them against the cores)."""
    settings = settings or get_settings()
    db = database or Database.from_url(settings.sqlalchemy_url)
    process_metrics = Metrics()
    if not is_sqlite(db.engine) and postgres_loop_inline(settings.postgres_inline_loop, db.engine.url,
                                                          processes=processes, cores=usable_cores()):
        db = db.with_inline_postgres(INLINE_BEGIN, on_rerun=process_metrics.count_inline_rerun)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Requests beyond a few threads wait on the event loop (cheap) instead of in threads
        # fighting over the GIL, the pool and, on SQLite, the one write lock. Measured with
        # 32 annotators: a third less CPU per annotation than anyio's default of 40 threads.
        to_thread.current_default_thread_limiter().total_tokens = (
            SQLITE_THREADS if is_sqlite(db.engine) else SERVER_THREADS
        )
        workers = start_workers(settings, db)
        # What is loaded by now (modules, models, routes: some 150,000 objects) lives as long
        # as the process. Set aside, the collector's full passes skip it; walked, each pass
        # stopped every request for about 100 ms, which alone set the loop's p99 latency.
        gc.collect()
        gc.freeze()
        yield
        workers.stop()
        _app.state.import_processes.close()
        _app.state.report_processes.close()
        _app.state.media_store.close()
        if database is None:  # we made it, we close it
            db.dispose()
        elif db.inline_postgres is not None:  # the connection kept for the loop is ours
            db.inline_postgres.close()

    app = Qistas(
        title="Qistas",
        version=__version__,
        description="A self-hosted data engine for AI training data.",
        openapi_url=None,  # the document and its page: api/docs.py
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.tokens = TokenCache(settings.token_cache_seconds)
    app.state.passwords = PasswordGate()
    app.state.metrics = process_metrics
    app.state.media_store = store_for(settings)
    app.state.import_processes = ImportProcesses(settings)
    app.state.report_processes = ReportProcesses(settings)
    errors.install(app)
    # The annotation loop's router first: a request is matched against routes in order, and
    # its paths overlap no other router's. It has no GET, so it goes without KnownQuery (one
    # dependency less on every take and submit); every GET of the others refuses a query
    # parameter it does not read.
    app.include_router(work.router, prefix=API_PREFIX)
    modules = (accounts, projects, tasks, media, reviews, quality, fraud, webhooks, exports, audit, models,
               generation, workforce, exams, pay)
    routers = [module.router for module in modules]
    for router in routers:
        app.include_router(router, prefix=API_PREFIX, dependencies=[KnownQuery])
    # Inside the body limit and the browser session: it reads bodies already bounded, for a known user.
    app.add_middleware(Idempotency, db=db, keyring=Keyring.from_settings(settings),
                       keep_hours=settings.idempotency_key_hours, paths=idempotent_paths(routers, API_PREFIX))
    app.add_middleware(BodyLimit, json_limit=settings.max_body_bytes, upload_limit=settings.max_upload_bytes)
    # Outside the body limit and the routes, inside the session middleware (web.install),
    # which names a browser session's user: a request over a limit is refused before its body.
    app.add_middleware(RequestLimits, settings=settings, database=db,
                       threads=SQLITE_THREADS if is_sqlite(db.engine) else SERVER_THREADS)

    docs.install(app, API_PREFIX)
    health.install(app, db)
    metrics.install(app, settings, db)

    web.install(app, db)

    # FastAPI builds a route's parameters on the route's first use, and silences a warning of
    # pydantic's around each build with warnings.catch_warnings, which is process-wide and not
    # thread-safe. Built later in a server thread while another thread left such a block, the
    # warning escaped as an error (a server started in a thread failed). Built here, by the
    # thread that makes the app, once.
    for _context in iter_route_contexts(app.routes):
        pass
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (one per worker process of ``qistas serve``)."""
    join_connection_shares()
    return create_app(get_settings(), processes=serve_workers())
