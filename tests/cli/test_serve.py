"""``qistas serve`` as a user starts it: a real process, on a real port."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.test_engine_processes import free_port, wait_until_up
from tests.conftest import SECRET


@pytest.mark.slow
def test_several_worker_processes_answer_without_a_delayed_ack_wait(db_url: str, tmp_path: Path) -> None:
    """With ``--workers``, uvicorn hands its worker processes a listening socket asyncio does
    not recognise as TCP, so Nagle's algorithm stayed on: each response's body waited for the
    client's delayed ACK of its headers, 40 ms or more, on every request."""
    port = free_port()
    env = {**os.environ, "QISTAS_DATABASE_URL": db_url, "QISTAS_HOME": str(tmp_path), "QISTAS_SECRET_KEY": SECRET}
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from qistas.cli import main; main()", "serve", "--port", str(port),
             "--workers", "2"], env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, proc, log_path)
        with httpx.Client(base_url=url) as client:  # one keep-alive connection
            times = []
            for _ in range(15):
                start = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                times.append(time.perf_counter() - start)
        # Linux delays an ACK by at least 40 ms; a healthy answer takes a millisecond or two.
        assert statistics.median(times) < 0.030, times
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
