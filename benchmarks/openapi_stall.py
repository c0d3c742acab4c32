"""What the first request for the OpenAPI document costs the other requests of its process.

``qistas serve`` (one process) on a fresh SQLite database (``annotate_loop.serve``); one client
asks ``/healthz`` every 5 ms, and after a second another asks ``/api/v1/openapi.json`` once (its
first request: the document is built then). Printed, per run: the document's first fetch, and the longest health
answer before it and from it on. While the document is built, a server that built it on its
event loop answered nobody else.

    python benchmarks/openapi_stall.py [--runs N]
"""

from __future__ import annotations

import argparse
import threading
import time

import httpx
from annotate_loop import serve


def one_run() -> tuple[float, float, float]:
    """The document's first fetch, and the longest health answer before and from it (ms)."""
    with serve(None, 1) as server:
        answers: list[float] = []
        stop = threading.Event()

        def ping() -> None:
            with httpx.Client(base_url=server.url) as client:
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
        assert httpx.get(server.url + "/api/v1/openapi.json", timeout=60).status_code == 200
        fetch = (time.perf_counter() - began) * 1000
        time.sleep(0.5)
        stop.set()
        pinging.join()
        return fetch, max(answers[:before]), max(answers[before:])


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
