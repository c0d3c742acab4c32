"""``qistas serve`` as a user starts it: a real process, on a real port."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.test_engine_processes import serve_processes


@pytest.mark.slow
def test_several_worker_processes_answer_without_a_delayed_ack_wait(db_url: str, tmp_path: Path) -> None:
    """With ``--workers``, uvicorn hands its worker processes a listening socket asyncio does
    not recognise as TCP, so Nagle's algorithm stayed on: each response's body waited for the
    client's delayed ACK of its headers, 40 ms or more, on every request."""
    with serve_processes(db_url, tmp_path, 1, "--workers", "2") as (url,), \
            httpx.Client(base_url=url) as client:  # one keep-alive connection
        times = []
        for _ in range(15):
            start = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            times.append(time.perf_counter() - start)
    # Linux delays an ACK by at least 40 ms; a healthy answer takes a millisecond or two.
    assert statistics.median(times) < 0.030, times


def test_a_taken_port_is_one_line_and_nothing_says_serving(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-c", "from qistas.cli import main; main()", "serve", "--port",
                               str(port)], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "QISTAS_HOME": str(tmp_path), "QISTAS_SECRET_KEY": "s" * 40})
    assert done.returncode == 1 and "serving" not in done.stdout
    assert done.stderr.strip().splitlines() == [
        f"error: cannot serve on 127.0.0.1:{port}: Address already in use; choose another with --port"]


@pytest.mark.parametrize(("proxies", "believed"), [(None, True), ("10.9.9.9", False)])
def test_forwarded_headers_are_believed_from_the_trusted_proxy_only(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proxies: str | None, believed: bool
) -> None:
    """Behind a TLS proxy, cookies go out Secure when the proxy says the request came over
    HTTPS; the same header from a peer that is not the proxy changes nothing."""
    if proxies:
        monkeypatch.setenv("QISTAS_FORWARDED_ALLOW_IPS", proxies)
    with serve_processes(db_url, tmp_path, 1) as (url,):
        plain = httpx.get(url + "/login")
        proxied = httpx.get(url + "/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert plain.status_code == proxied.status_code == 200
    assert "secure" not in plain.headers["set-cookie"].lower()
    assert ("secure" in proxied.headers["set-cookie"].lower()) is believed
