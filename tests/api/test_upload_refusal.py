"""An upload its sender may not make is refused before its body is received.

A 300 MB import sent to another tenant's project (or by an annotator) used to be spooled to
disk whole before the 403 or 404. Here the request's head and a first slice of its body are
sent over a real socket, the rest is held back, and the refusal must arrive meanwhile.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.conftest import World
from tests.api.helpers import count_tasks

DECLARED = 24 * 1024 * 1024  # what the client says it will send: under both routes' body limits
SENT = 64 * 1024  # what it sends before waiting for an answer: well under the in-memory spool


def _token(client: httpx.Client) -> str:
    return str(client.headers["authorization"])


def _answer_while_body_unsent(world: World, path: str, token: str) -> tuple[int, dict[str, Any]]:
    address = urlsplit(world.url)
    head = (f"POST /api/v1{path} HTTP/1.1\r\nHost: {address.netloc}\r\nAuthorization: {token}\r\n"
            f"Content-Type: application/x-ndjson\r\nContent-Length: {DECLARED}\r\n\r\n").encode()
    line = b'{"data": {"text": "spam"}}\n'
    with socket.create_connection((address.hostname, address.port), timeout=5) as raw:
        raw.sendall(head + line * (SENT // len(line)))
        started = time.monotonic()
        received = b""
        while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < _length(received):
            chunk = raw.recv(65536)  # times out (a failure) while the server waits for the body
            assert chunk, received
            received += chunk
        assert time.monotonic() - started < 5
    status = int(received.split(b" ", 2)[1])
    return status, json.loads(received.partition(b"\r\n\r\n")[2])


def _length(received: bytes) -> int:
    for line in received.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 62


@pytest.mark.parametrize("route", ["tasks", "annotations"])
def test_an_upload_without_access_is_refused_before_the_body_arrives(world: World, route: str) -> None:
    project = world.rival.project(workforce="shared")["id"]
    path = f"/projects/{project}/{route}"
    status, body = _answer_while_body_unsent(world, path, _token(world.tenant.owner))
    assert (status, body["error"]["code"]) == (404, "not_found")
    # A shared annotator sees the project (they may work on it) but may not import into it.
    status, body = _answer_while_body_unsent(world, path, _token(world.tenant.annotators[0]))
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert count_tasks(world.database, project) == 0
    # The owner's upload of the same kind is received and imported.
    created = world.rival.owner.post(f"/projects/{project}/tasks", content=b'{"data": {"text": "x"}}\n',
                                     headers={"content-type": "application/x-ndjson"})
    assert created.status_code == 201, created.text
