"""Outbound HTTP with bounds a receiver cannot stretch: a deadline per connection, and a cap
on the response bytes read.

httpx's timeouts apply to each network operation, so a receiver that sends one byte every
few seconds never trips them and holds a sender for as long as it likes. Here every
connection gets a deadline when it is opened; each read, write and TLS handshake may wait
only for the time left, and past the deadline it fails with a timeout. The senders open one
connection per request (no keep-alive), so the deadline bounds the whole request: connect,
send, status line, headers and whatever of the body is read.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

MAX_RESPONSE_BYTES = 64 * 1024  # of a receiver's answer body, read and dropped; the rest is never read


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _left(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the connection ran past its deadline")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, self._left(timeout))
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        deadline = time.monotonic() + self._seconds
        limit = self._seconds if timeout is None else min(timeout, self._seconds)
        stream = self._inner.connect_tcp(host, port, limit, local_address, socket_options)
        return _DeadlineStream(stream, deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not a destination")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_client(seconds: float) -> httpx.Client:
    """A client whose every connection ends within ``seconds``; no pooling, no redirects,
    no proxies or certificates from the environment."""
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx has no parameter for the network backend: its connection pool is rebuilt with
    # the same settings (no keep-alive: a pooled TLS connection opened for one host name
    # could otherwise carry a request for another, see the dispatcher) and ours.
    transport._pool = httpcore.ConnectionPool(  # noqa: SLF001
        ssl_context=httpx.create_ssl_context(trust_env=False), max_keepalive_connections=0,
        network_backend=_DeadlineBackend(seconds),
    )
    return httpx.Client(transport=transport, timeout=seconds, follow_redirects=False, trust_env=False)


def status_of(client: httpx.Client, url: httpx.URL, *, content: bytes, headers: dict[str, str],
              extensions: dict[str, Any]) -> int:
    """POST and return the status; at most MAX_RESPONSE_BYTES of the body are read."""
    with client.stream("POST", url, content=content, headers=headers, extensions=extensions) as response:
        read = 0
        for chunk in response.iter_raw():
            read += len(chunk)
            if read >= MAX_RESPONSE_BYTES:
                break
        return response.status_code


class TooLong(Exception):
    """The answer's body is larger than the cap; nothing of it is used."""


def post_read(client: httpx.Client, url: httpx.URL, *, content: bytes, headers: dict[str, str],
              extensions: dict[str, Any], limit: int) -> tuple[int, httpx.Headers, bytes]:
    """POST and return the status, headers and body; ``TooLong`` past ``limit`` bytes (the
    rest is never read)."""
    with client.stream("POST", url, content=content, headers=headers, extensions=extensions) as response:
        body = bytearray()
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > limit:
                raise TooLong(f"the answer is larger than {limit} bytes")
        return response.status_code, response.headers, bytes(body)
