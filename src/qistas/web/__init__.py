"""The browser UI: server-rendered pages and small plain-JavaScript modules (no build step).

``install(app, database)`` mounts the static files, the page routes and the session
middleware on the API's application.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from qistas import errors
from qistas.api import errors as api_errors
from qistas.db.engine import Database
from qistas.web.messages import describe
from qistas.web.pages import admin, audit, auth, console, generation, models, pools, review, work
from qistas.web.pages.common import LoginRequired, render, translator
from qistas.web.session import SessionMiddleware

STATIC = Path(__file__).resolve().parent / "static"


def install(app: FastAPI, database: Database) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, work, review, console, generation, models, pools, audit, admin):
        app.include_router(module.router)
    app.add_middleware(SessionMiddleware, database=database)

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/login?next=" + quote(exc.next_path, safe="/"), status_code=303)

    # Pages answer errors with a page in the reader's words; the API keeps its one JSON shape.
    def error_page(request: Request, exc: errors.QistasError, status: int) -> Response:
        t = translator(request)
        heading = t("error.title")
        return render(request, "error.html", status=status, title=heading, heading=heading, message=describe(t, exc))

    @app.exception_handler(errors.QistasError)
    async def _domain(request: Request, exc: errors.QistasError) -> Response:
        if request.url.path.startswith("/api/"):
            return api_errors.domain_response(exc)
        return error_page(request, exc, api_errors.status_for(exc))

    def wants_page(request: Request) -> bool:
        # An address no page answers gets a page only when a browser asks for one.
        return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if not wants_page(request):
            return api_errors.http_response(exc)
        code = api_errors.HTTP_CODES.get(exc.status_code, "error")
        return error_page(request, errors.QistasError(str(exc.detail), code=code), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if not wants_page(request):
            return api_errors.validation_response(exc.errors())
        # A page's address with a malformed part (``/console/projects/abc``): nothing is there.
        return error_page(request, errors.NotFound("not found"), 404)
