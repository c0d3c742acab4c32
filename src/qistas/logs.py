"""Log records as text or JSON lines, each carrying the id of the request being handled.

The request id lives in a context variable set by ``api.requests.RequestContext`` for the
length of a request: every record written while the request is handled, in a route, a
domain function or a worker thread the request runs in, carries it. ``qistas serve`` hands
:func:`logging_config` to uvicorn, so its own loggers write in the same format.

JSON lines hold ``time``, ``level``, ``logger``, ``message``, ``request_id`` when there is
one, the request fields of a request line (``method``, ``path``, ``status``,
``duration_ms``, ``user_id``) and ``exception`` when one is logged. Nothing else from a
record is written: no headers, bodies, tokens or task data.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("qistas_request_id", default=None)

# The fields a request line adds (passed as ``extra``); the only extras ever written.
REQUEST_FIELDS = ("method", "path", "status", "duration_ms", "user_id")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    found: dict[str, Any] = {}
    rid = request_id.get()  # formatted in the thread and context that wrote the record
    if rid is not None:
        found["request_id"] = rid
    for name in REQUEST_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found[name] = value
    return found


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _time(record), "level": record.levelname.lower(), "logger": record.name,
                                "message": record.getMessage(), **_fields(record)}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2026-11-30T21:40:00.123Z INFO qistas.request GET /api/v1/me 200 request_id=... duration_ms=1.2``"""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{name}={value}" for name, value in _fields(record).items())
        line = f"{_time(record)} {record.levelname} {record.name} {record.getMessage()}"
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


FORMATTERS: dict[str, type[logging.Formatter]] = {"text": TextFormatter, "json": JsonFormatter}


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for a server process: ours and uvicorn's loggers, one format."""
    handler = {"class": "logging.StreamHandler", "formatter": "qistas", "stream": "ext://sys.stderr"}

    def own() -> dict[str, Any]:
        return {"handlers": ["default"], "level": level.upper(), "propagate": False}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"qistas": {"()": f"{__name__}.{FORMATTERS[log_format].__name__}"}},
        "handlers": {"default": handler},
        "loggers": {"qistas": own(), "uvicorn": own(), "uvicorn.error": {"level": level.upper()},
                    "uvicorn.access": own()},
        # Other libraries' loggers write warnings and above whatever the level: at info, the
        # HTTP client would log every webhook and callback URL it calls, query included.
        "root": {"handlers": ["default"], "level": max(level.upper(), "WARNING", key=logging.getLevelName)},
    }
