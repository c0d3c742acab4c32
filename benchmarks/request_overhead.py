"""What the request middleware adds to one request: its id, its metrics and (optionally) its log line.

A minimal ASGI app that answers 200 is called N times directly, then N times through
``api.requests.RequestContext`` with the server's ``Metrics``; printed: CPU microseconds per
request of each, and the difference. ``--multiprocess`` keeps the metrics in files as
``qistas serve`` does (prometheus-client's multiprocess mode); ``--log`` writes the request
line (JSON) to /dev/null, as ``--log-level info`` does.

    python benchmarks/request_overhead.py
    python benchmarks/request_overhead.py --multiprocess --log
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from typing import Any


async def answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def run(app: Any, n: int) -> float:
    scope = {"type": "http", "method": "POST", "path": "/api/v1/projects/7/assignments", "headers": [
        (b"host", b"127.0.0.1"), (b"authorization", b"Bearer qst_x"), (b"content-length", b"0")]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Any) -> None:
        return None

    start = time.process_time()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--multiprocess", action="store_true", help="metrics in files, as qistas serve keeps them")
    parser.add_argument("--log", action="store_true", help="write each request line (JSON) to /dev/null")
    args = parser.parse_args()
    folder = tempfile.TemporaryDirectory(prefix="qistas-metrics-")
    if args.multiprocess:  # before prometheus-client is imported
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder.name
    from qistas.api.metrics import Metrics
    from qistas.api.requests import RequestContext
    from qistas.logs import JsonFormatter

    if args.log:
        handler = logging.FileHandler(os.devnull)
        handler.setFormatter(JsonFormatter())
        logging.getLogger("qistas").addHandler(handler)
        logging.getLogger("qistas").setLevel(logging.INFO)
    wrapped = RequestContext(answer, metrics=Metrics(), routes=[])
    bare_us, wrapped_us = [], []
    for _ in range(3):  # alternately, best of three each
        bare_us.append(asyncio.run(run(answer, args.requests)))
        wrapped_us.append(asyncio.run(run(wrapped, args.requests)))
    bare, through = min(bare_us), min(wrapped_us)
    mode = ("multiprocess" if args.multiprocess else "in-memory") + (" + request log" if args.log else "")
    print(f"{args.requests} requests, metrics {mode}: bare app {bare:.1f} us, through RequestContext "
          f"{through:.1f} us CPU per request: +{through - bare:.1f} us")
    folder.cleanup()


if __name__ == "__main__":
    main()
