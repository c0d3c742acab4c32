"""Errors raised by the SDK, one per server error code.

    ApiError              any error answer; .status, .code, .message, .details, .request_id
    ├── Unauthorized      401 unauthorized
    ├── Forbidden         403 forbidden
    ├── NotFound          404 not_found
    ├── Conflict          409 conflict
    ├── TooLarge          413 too_large
    ├── Unsupported       415 unsupported_media_type
    ├── Invalid           422 invalid
    └── ServerError       5xx internal_error (retried for safe requests before it is raised)
    TransportError        the server could not be reached (after retries)
"""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 request_id: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id  # quote it to the operator: their logs carry it


class Unauthorized(ApiError):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class TooLarge(ApiError):
    pass


class Unsupported(ApiError):
    pass


class Invalid(ApiError):
    pass


class ServerError(ApiError):
    pass


class RateLimited(ApiError):
    """429 ``too_many_requests``: over a request limit; ``retry_after`` is the server's wait in
    seconds. Refused before anything was done, so the same request may be sent again then."""

    @property
    def retry_after(self) -> float:
        try:
            return max(0.1, float(self.details["retry_after"]))
        except (KeyError, TypeError, ValueError):
            return 1.0


class TooManyAttempts(ApiError):
    """429 ``too_many_attempts``: too many failed sign-ins or password checks; not retried."""


class TransportError(Exception):
    """No answer from the server: connection refused, reset or timed out."""


BY_CODE: dict[str, type[ApiError]] = {
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "conflict": Conflict,
    "too_large": TooLarge,
    "unsupported_media_type": Unsupported,
    "invalid": Invalid,
    "internal_error": ServerError,
    "too_many_requests": RateLimited,
    "too_many_attempts": TooManyAttempts,
}


# A more precise code (``wrong_password``, ``last_owner``, ``token_scope``) keeps the class of its status.
BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 413: TooLarge, 415: Unsupported, 422: Invalid,
}


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        code, message, details = error["code"], error["message"], error.get("details")
    except (ValueError, KeyError, TypeError):
        code, message, details = "error", response.text[:500], None
    cls = BY_CODE.get(code) or BY_STATUS.get(response.status_code)
    if cls is None:
        cls = ServerError if response.status_code >= 500 else ApiError
    raise cls(response.status_code, code, message, details, response.headers.get("x-request-id"))
