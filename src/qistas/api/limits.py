"""Request body size limits, enforced before any handler reads the body.

A declared Content-Length over the limit is refused at once; a chunked body is counted as it
streams and refused the moment it passes the limit. Either way the handler never sees a
partial body, so nothing is written.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qistas.api.errors import error_body
from qistas.domain.tasktypes.base import MAX_ANSWER_BYTES

UPLOAD_PATH_SUFFIX = "/tasks"
ANSWER_PATH_SUFFIX = "/submit"  # one annotator's answer: refused before it is parsed


class BodyLimit:
    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    def _limit(self, scope: Scope) -> int:
        path: str = scope.get("path", "")
        if path.endswith(ANSWER_PATH_SUFFIX):
            return min(self.json_limit, MAX_ANSWER_BYTES)
        return self.upload_limit if path.endswith(UPLOAD_PATH_SUFFIX) else self.json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException reaches the error translator: 413 in the one shape.
                    raise HTTPException(413, f"the request body is larger than {limit} bytes")
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = json.dumps(
            error_body("too_large", f"the request body is larger than {limit} bytes", {"limit": limit})
        ).encode()
        headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                              (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
