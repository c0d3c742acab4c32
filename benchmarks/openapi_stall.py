"""What the first request for the OpenAPI document costs the other requests of its process.

``qistas serve`` (one process) on a fresh SQLite database; one client asks ``/healthz`` every
5 ms, and after a second another asks ``/api/v1/openapi.json`` once (its first request: the
document is built then). Printed, per run: the document's first fetch, and the longest health
answer before it and from it on. While the document is built, a server that built it on its
event loop answered nobody else.

    python benchmarks/openapi_stall.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_run() -> tuple[float, float, float]:
    """The document's first fetch, and the longest health answer before and from it (ms)."""
    home = tempfile.mkdtemp()
    env = {**os.environ, "QISTAS_DATABASE_URL": f"sqlite:///{home}/qistas.db", "QISTAS_HOME": home,
           "QISTAS_SECRET_KEY": "benchmark-secret-key-" + "x" * 24}
    subprocess.run([sys.executable, "-c", "from qistas.cli import main; main()", "migrate"], env=env, check=True,
                   capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-c", "from qistas.cli import main; main()", "serve", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        answers: list[float] = []
        stop = threading.Event()

        def ping() -> None:
            with httpx.Client(base_url=base) as client:
                while not stop.is_set():
                    began = time.perf_counter()
                    client.get("/healthz")
                    answers.append((time.perf_counter() - began) * 1000)
                    time.sleep(0.005)

        pinging = threading.Thread(target=ping)
        pinging.start()
        time.sleep(1)
        before = len(answers)
        began = time.perf_counter()
        assert httpx.get(base + "/api/v1/openapi.json", timeout=60).status_code == 200
        fetch = (time.perf_counter() - began) * 1000
        time.sleep(0.5)
        stop.set()
        pinging.join()
        return fetch, max(answers[:before]), max(answers[before:])
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    for _ in range(args.runs):
        fetch, before, during = one_run()
        print(f"openapi.json first fetch {fetch:.0f} ms; longest /healthz answer before it {before:.1f} ms, "
              f"from it on {during:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
