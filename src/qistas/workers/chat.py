"""A client for OpenAI-compatible chat-completions APIs: ``POST {base_url}/chat/completions``.

One request per task, with the endpoint's key as ``Authorization: Bearer`` and
``response_format: {"type": "json_object"}``. Each request ends within the endpoint's
timeout however slowly the server answers, and reads at most ``MAX_ANSWER_BYTES``
(workers/outbound.py); it goes to the addresses the SSRF guard checked, never to a name
resolved again. A 408, 429, 5xx, timeout or connection error is tried again, up to
``model_max_attempts`` requests, after an exponential backoff or the server's
``Retry-After`` (at most ``model_retry_max_delay_seconds``); any other failure is final.
Requests start no faster than the endpoint's ``requests_per_minute``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from qistas import __version__
from qistas.domain.destinations import Blocked, Policy, resolve
from qistas.workers.outbound import TooLong, post_read

MAX_ANSWER_BYTES = 1024 * 1024
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Stopped(Exception):
    """The server is shutting down: the job keeps its lease and is taken over later."""


class Failure(Exception):
    def __init__(self, reason: str, *, retry: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.retry = retry
        self.retry_after = retry_after


@dataclass
class Reply:
    """What one task's exchange came to: the content, or why there is none, and the usage."""

    content: str | None = None
    reason: str | None = None
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class Limiter:
    """Request starts spaced by ``60 / per_minute`` seconds, across the threads of a job."""

    per_minute: int | None
    stopping: threading.Event
    _next: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self) -> None:
        if not self.per_minute:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + 60.0 / self.per_minute
        if slot > now and self.stopping.wait(slot - now):
            raise Stopped


@dataclass(frozen=True)
class Endpoint:
    url: str  # {base_url}/chat/completions
    model: str
    api_key: str | None
    policy: Policy
    timeout: float


@dataclass(frozen=True)
class Retrying:
    attempts: int
    base: float
    max_delay: float

    def delay(self, attempt: int, retry_after: float | None) -> float:
        wanted = retry_after if retry_after is not None else self.base * 2 ** (attempt - 1)
        return min(max(wanted, 0.0), self.max_delay)


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def once(client: httpx.Client, endpoint: Endpoint, body: bytes) -> Reply:
    """One request; ``Failure`` says why there is no answer and whether to try again."""
    try:
        target = resolve(endpoint.url, endpoint.policy, field_name="base_url")  # checked at every connect
    except Blocked as exc:
        raise Failure(exc.message) from None
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    headers = {
        "Content-Type": "application/json", "Accept": "application/json", "Accept-Encoding": "identity",
        "User-Agent": f"Qistas/{__version__}",
        "Host": host if target.port == default_port else f"{host}:{target.port}",
    }
    if endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    error = "no address"
    for address in target.addresses:
        url = httpx.URL(target.url).copy_with(host=address)
        try:
            status, answer_headers, raw = post_read(client, url, content=body, headers=headers,
                                                    extensions=extensions, limit=MAX_ANSWER_BYTES)
        except httpx.ConnectError:
            error = f"could not connect to {address}"
            continue  # the next address of the host may answer
        except httpx.TimeoutException:
            raise Failure(f"no answer within {endpoint.timeout:g} seconds", retry=True) from None
        except httpx.HTTPError as exc:
            raise Failure(f"{type(exc).__name__}: {exc}", retry=True) from None
        except TooLong as exc:
            raise Failure(str(exc)) from None
        return _reply(status, answer_headers, raw)
    raise Failure(error, retry=True)


def _reply(status: int, headers: httpx.Headers, raw: bytes) -> Reply:
    if status in RETRIED_STATUSES:
        raise Failure(f"HTTP {status}", retry=True, retry_after=retry_after(headers.get("retry-after")))
    if 300 <= status < 400:
        raise Failure(f"HTTP {status}: redirects are not followed")
    if status >= 400:
        raise Failure(f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
    kind = headers.get("content-type", "").split(";")[0].strip()
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise Failure(f"the server did not answer JSON ({kind or 'no content type'})") from None
    try:
        content = parsed["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise Failure("the server's answer is not a chat completion (no choices[0].message)") from None
    usage = parsed.get("usage") if isinstance(parsed, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    return Reply(content=content if isinstance(content, str) else None,
                 reason=None if isinstance(content, str) else "the answer has no text content",
                 input_tokens=_count(usage.get("prompt_tokens")), output_tokens=_count(usage.get("completion_tokens")))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9 else 0


def ask(client: httpx.Client, endpoint: Endpoint, messages: list[dict[str, str]], *, limiter: Limiter,
        retrying: Retrying, stopping: threading.Event, temperature: float = 0.0, seed: int | None = None,
        json_mode: bool = True) -> Reply:
    """The answer to one task's messages, tried again as the module says. Generation asks with a
    temperature and a seed, and for plain text where it compares endpoints' answers."""
    request: dict[str, Any] = {"model": endpoint.model, "messages": messages, "temperature": temperature}
    if seed is not None:
        request["seed"] = seed
    if json_mode:
        request["response_format"] = {"type": "json_object"}
    body = json.dumps(request, ensure_ascii=False).encode()
    for attempt in range(1, retrying.attempts + 1):
        limiter.wait()
        try:
            reply = once(client, endpoint, body)
        except Failure as failure:
            if not failure.retry or attempt == retrying.attempts:
                suffix = f" (after {attempt} requests)" if attempt > 1 else ""
                return Reply(reason=failure.reason + suffix, requests=attempt)
            if stopping.wait(retrying.delay(attempt, failure.retry_after)):
                raise Stopped from None
            continue
        reply.requests = attempt
        return reply
    raise AssertionError("unreachable: the last attempt returns")
