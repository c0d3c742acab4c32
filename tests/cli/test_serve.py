"""``qistas serve`` as a user starts it: a real process, on a real port."""

from __future__ import annotations

import statistics
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
