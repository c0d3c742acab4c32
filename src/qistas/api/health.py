"""Liveness and readiness, for load balancers and orchestrators; outside the API's schema.

``GET /healthz``: the process answers (no database, so a slow database never gets a live
server restarted). ``GET /readyz``: the process can serve, meaning one cheap read of the
database works and its schema is not older than this version's migrations; else 503 in the
one error shape, ``details`` saying which.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Response
from sqlalchemy.exc import SQLAlchemyError

from qistas.api.errors import domain_response
from qistas.db.engine import Database
from qistas.db.migrate import missing
from qistas.db.unit_of_work import read
from qistas.errors import Unavailable

log = logging.getLogger("qistas.api")


def ensure_ready(db: Database) -> None:
    try:
        lacking = read(db, missing)
    except SQLAlchemyError as exc:
        log.warning("not ready: the database cannot be read: %s", type(exc).__name__)
        raise Unavailable("the database cannot be reached", details={"database": "unreachable"}) from None
    if lacking:
        raise Unavailable("the database schema is older than this server's: run `qistas migrate`",
                          details={"database": "not_migrated", "missing": sorted(lacking)})


def install(app: FastAPI, db: Database) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False, response_model=None)
    def readyz() -> dict[str, str] | Response:
        try:
            ensure_ready(db)
        except Unavailable as exc:  # the JSON error shape here too, not the web pages' error page
            return domain_response(exc)
        return {"status": "ok"}
