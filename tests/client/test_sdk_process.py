"""The SDK against ``qistas serve`` running as its own process, as a customer would use it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qistas.client import Client
from tests.factories import CLASSIFICATION

pytestmark = pytest.mark.sqlite_only  # the server process uses its own SQLite file


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(home: Path, *args: str) -> str:
    env = {**os.environ, "QISTAS_HOME": str(home)}
    env.pop("QISTAS_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "qistas.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    env = {**os.environ, "QISTAS_HOME": str(tmp_path), "QISTAS_WORKER_POLL_SECONDS": "0.1"}
    env.pop("QISTAS_DATABASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "qistas.cli", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"qistas serve did not start: {process.stderr.read() if process.stderr else ''}")
            time.sleep(0.1)
        yield url, tmp_path
    finally:
        process.terminate()
        process.wait(20)
        if process.stderr:
            process.stderr.close()


def test_sdk_against_a_server_process(served: tuple[str, Path], tmp_path: Path) -> None:
    url, home = served
    token = _cli(home, "users", "create", "owner@acme.test", "--role", "owner", "--new-org", "acme",
                 "--token").splitlines()[-1]
    with Client(url, token) as client:
        project = client.projects.create(name="p", task=CLASSIFICATION)
        added = project.tasks.add([{"data": {"text": f"t{i}"}, "unique_id": f"u{i}"} for i in range(10)],
                                  chunk_size=4)
        assert (added.created, added.duplicates) == (10, 0)
        job = project.export_job(format="csv").wait(poll=0.1, timeout=30)
        info = job.download(tmp_path / "out" / "tasks.csv")
        assert info.total == 10 and len((tmp_path / "out" / "tasks.csv").read_text().splitlines()) == 11
        assert [p.suffix for p in (home / "media" / "exports").iterdir()] == [".csv"]
