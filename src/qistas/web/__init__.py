"""The browser UI: server-rendered pages and small plain-JavaScript modules (no build step).

``install(app, database)`` mounts the static files, the page routes and the session
middleware on the API's application.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from qistas import errors
from qistas.api import errors as api_errors
from qistas.db.engine import Database
from qistas.web.pages import admin, auth, console, work
from qistas.web.pages.common import LoginRequired, render, translator
from qistas.web.session import SessionMiddleware

STATIC = Path(__file__).resolve().parent / "static"


def install(app: FastAPI, database: Database) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, work, console, admin):
        app.include_router(module.router)
    app.add_middleware(SessionMiddleware, database=database)

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/login?next=" + quote(exc.next_path, safe="/"), status_code=303)

    # Pages answer errors with a page; the API keeps its one JSON shape.
    @app.exception_handler(errors.QistasError)
    async def _domain(request: Request, exc: errors.QistasError) -> Response:
        if request.url.path.startswith("/api/"):
            return api_errors.domain_response(exc)
        heading = translator(request)("error.title")
        return render(request, "error.html", status=api_errors.status_for(exc), title=heading, heading=heading,
                      message=exc.message)
