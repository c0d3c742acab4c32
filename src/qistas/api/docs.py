"""The API's interactive documentation, served from the package: no CDN, the site's own CSP.

Swagger UI's files come from ``fastapi-offline``, a maintained package that ships them
(Swagger UI 5, which renders OpenAPI 3.1); the page and its start-up script are ours, so no
inline script is needed and the strict ``script-src 'self'`` policy stays.
"""

from __future__ import annotations

import threading
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

ASSETS = str(files("fastapi_offline") / "static")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Qistas API</title>
<link rel="icon" href="/static/favicon.svg">
<link rel="stylesheet" href="{prefix}/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{prefix}/openapi.json"></div>
<script src="{prefix}/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""


def install(app: FastAPI, prefix: str) -> None:
    """``{prefix}/openapi.json``, and ``{prefix}/docs``: Swagger UI over it.

    FastAPI builds the document on its first request, in the request's coroutine: a third of
    a second of the interpreter during which the process's event loop, and every take and
    submit it serves, waited. Here it is built in a thread, one build at a time (FastAPI sets
    a process-wide warnings filter around each part, which two threads at once would undo),
    and kept by FastAPI for the next requests."""
    building = threading.Lock()

    @app.get(f"{prefix}/openapi.json", include_in_schema=False)
    def openapi_document() -> JSONResponse:  # a plain function: run in the thread pool
        with building:
            return JSONResponse(app.openapi())

    app.mount(f"{prefix}/docs/assets", StaticFiles(directory=ASSETS), name="api-docs-assets")
    page = PAGE.format(prefix=prefix)

    @app.get(f"{prefix}/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(page)
