"""Domain errors. Each has a stable ``code``; only ``qistas.api.errors`` maps them to HTTP.

    QistasError
    ├── ConfigError        bad settings (never reaches a client)
    ├── Unauthorized       unauthenticated          (401)
    ├── Forbidden          wrong role, same tenant  (403)
    ├── NotFound           missing, or another tenant's object (404)
    ├── Conflict           state forbids it, e.g. a stale lease (409)
    │   └── IdempotencyKeyInUse   the first request with this key is still running
    ├── TooLarge           body or upload over its limit (413)
    │   └── QuotaExceeded  an organization's stored bytes would pass its quota (413)
    ├── Unsupported        media type not accepted (415)
    ├── TooManyAttempts    too many failed sign-ins; retry after a delay (429)
    ├── Invalid            input that fails validation (422)
    │   └── IdempotencyKeyReused  the key was sent before with a different request
    └── Unavailable        the server cannot serve now, e.g. its database is unreachable (503)
"""

from __future__ import annotations

from typing import Any


class QistasError(Exception):
    code = "error"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None, reason: str | None = None,
                 params: dict[str, str | int | float] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code
        # Why, for people: the browser UI phrases the error from ``reason`` (with ``params``) in
        # the reader's language. The API's answer carries neither: it keeps code, message, details.
        self.reason = reason
        self.params = params or {}


class ConfigError(QistasError):
    code = "config_error"


class Unauthorized(QistasError):
    code = "unauthorized"


class Forbidden(QistasError):
    code = "forbidden"


class NotFound(QistasError):
    code = "not_found"


class Conflict(QistasError):
    code = "conflict"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"


class TooLarge(QistasError):
    code = "too_large"


class QuotaExceeded(TooLarge):
    code = "quota_exceeded"


class Unsupported(QistasError):
    code = "unsupported_media_type"


class TooManyAttempts(QistasError):
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class Invalid(QistasError):
    code = "invalid"


class IdempotencyKeyReused(Invalid):
    code = "idempotency_key_reused"


class Unavailable(QistasError):
    """The database cannot be reached (or, on SQLite, stayed locked): try again shortly."""

    code = "unavailable"
