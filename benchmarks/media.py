"""Media import benchmark: N small generated images (PNG and JPEG, every one different) with
their boxes tasks, sent as one zip (what ``qistas import --media DIR`` sends), on local
storage and on S3 (moto's server on the loopback, in this process).

The server runs in a process of its own (uvicorn, SQLite, background work off); its peak
memory is that process's VmHWM, read before and after the import. Each size is a fresh
server, so the peaks of two sizes compare: flat memory means the same peak for N and 4N.

Then serving: the annotation loop of ``annotate_loop.py`` (K annotators, take -> submit,
boxes tasks imported with an image each, 640×480 JPEG) run alternately without (A) and with
(B) each annotator fetching its task's signed image URL between take and submit, as the
annotation page does; A, B, A, B ... so that a machine shared with other work weighs on both
alike. Printed: every run, and B's throughput against A's.

    python benchmarks/media.py [--sizes 500,2000] [--stores local,s3]
                               [--serve-rounds 1] [--serve-clients 32] [--serve-seconds 10] [--serve-tasks 2000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUCKET = "bench-media"


def make_images(folder: Path, n: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        name = f"img/{i // 1000}/{i}.{'png' if i % 2 else 'jpg'}"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (64, 48), (i % 256, (i // 256) % 256, (i * 7) % 256))
        image.putpixel((i % 64, (i // 64) % 48), (255 - i % 256, 0, 0))
        out = io.BytesIO()
        image.save(out, "PNG" if i % 2 else "JPEG", quality=90)
        path.write_bytes(out.getvalue())
        rows.append(json.dumps({"unique_id": str(i), "data": {"image": name}}))
    tasks = folder.parent / f"tasks-{n}.jsonl"
    tasks.write_text("\n".join(rows) + "\n")
    return tasks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def prepare(home: Path, env: dict[str, str]) -> str:
    """A database with an organization, an owner and their token; the token."""
    code = (
        "from qistas.config import get_settings\nfrom qistas.db.engine import Database\n"
        "from qistas.db.migrate import upgrade\nfrom qistas.domain import users\n"
        "s = get_settings(); upgrade(s.sqlalchemy_url); db = Database.from_url(s.sqlalchemy_url)\n"
        "with db.writer.begin() as session:\n"
        "    org = users.create_org(session, name='Bench', slug='bench')\n"
        "    owner = users.create_user(session, email='o@bench.test', role='owner', org_id=org.id)\n"
        "    print(users.create_token(session, user=owner))\n"
    )
    return subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def run_one(n: int, store: str, work: Path, s3_url: str | None) -> dict[str, object]:
    from qistas.client.media import media_zip

    home = Path(tempfile.mkdtemp(dir=work, prefix=f"home-{store}-{n}-"))
    env = {**os.environ, "QISTAS_HOME": str(home), "QISTAS_BACKGROUND_WORKERS": "false",
           "PYTHONPATH": str(ROOT / "src")}
    if store == "s3":
        assert s3_url is not None
        env.update(QISTAS_MEDIA_S3_BUCKET=BUCKET, QISTAS_MEDIA_S3_ENDPOINT_URL=s3_url,
                   QISTAS_MEDIA_S3_ACCESS_KEY_ID="k", QISTAS_MEDIA_S3_SECRET_ACCESS_KEY="s",
                   QISTAS_MEDIA_S3_PREFIX=f"{home.name}/")
    token = prepare(home, env)
    folder = work / f"media-{n}"
    tasks = work / f"tasks-{n}.jsonl"
    if not tasks.exists():
        tasks = make_images(folder, n)
    packed = media_zip(tasks, folder)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "import uvicorn; from qistas.api.app import create_app; "
         f"uvicorn.run(create_app(), host='127.0.0.1', port={port}, log_level='warning')"], env=env)
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            for _ in range(200):
                try:
                    if client.get("/me").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            spec = {"type": "boxes", "labels": ["a", "b"], "image_field": "image"}
            pid = client.post("/projects", json={"name": "bench", "task": spec}).json()["id"]
            before = peak_kib(server.pid)
            started = time.perf_counter()
            with packed.open("rb") as handle:
                answer = client.post(f"/projects/{pid}/tasks", files={"file": ("media.zip", handle, "application/zip")},
                                     data={"format": "zip"})
            seconds = time.perf_counter() - started
            answer.raise_for_status()
            assert answer.json()["created"] == n, answer.text
            stored = answer.json()["media"]  # a few JPEGs of near colours encode to the same bytes
            after = peak_kib(server.pid)
    finally:
        server.terminate()
        server.wait(30)
        size_mb = packed.stat().st_size / 1e6
        packed.unlink()
    return {"store": store, "images": n, "distinct": stored, "seconds": round(seconds, 2), "per_s": round(n / seconds),
            "zip_mb": round(size_mb, 1), "rss_before_mb": round(before / 1024), "rss_peak_mb": round(after / 1024)}


def serve_rounds(rounds: int, clients: int, seconds: float, n_tasks: int) -> None:
    """A (the loop, leases carrying signed URLs) and B (each one fetched), alternated."""
    import annotate_loop as loop

    runs: list[tuple[str, loop.LoopResult]] = []
    for _ in range(rounds):
        for name, fetch in (("A", False), ("B", True)):
            result = loop.annotate_loop("sqlite", None, clients, n_tasks, seconds, loop.DEFAULT_WORKERS["sqlite"],
                                        kind="boxes", media=True, fetch=fetch)
            runs.append((name, result))
            print(f"{name}: {result.rate:.0f} annotations/s, cycle p99 {result.cycle[2]:.0f} ms, "
                  f"errors {sum(result.errors.values())}", flush=True)
    print(f"\nServing signed media: {clients} annotators, boxes, {n_tasks} tasks with an image each, "
          f"{seconds:.0f} s per run; A: no image fetched, B: each task's image fetched between take and submit")
    print("| run | ann/s | cycle p50/p95/p99 ms | take p99 ms | submit p99 ms | image GET p50/p95/p99 ms | "
          "image KB | errors | violations | CPU ms/ann server |")
    print("|---|---:|---|---:|---:|---|---:|---:|---:|---:|")
    for name, r in runs:
        print(f"| {name} | {r.rate:.0f} | {loop.ms(r.cycle)} | {r.take[2]:.0f} | {r.submit[2]:.0f} | "
              f"{loop.ms(r.media) if r.media else '–'} | {r.media_kb:.0f} | {sum(r.errors.values())} | "
              f"{r.violations} | {r.server_cpu_ms:.1f} |")
    a = [r for name, r in runs if name == "A"]
    b = [r for name, r in runs if name == "B"]
    if a and b:
        rate_a, rate_b = sum(r.rate for r in a) / len(a), sum(r.rate for r in b) / len(b)
        p99_a, p99_b = sum(r.cycle[2] for r in a) / len(a), sum(r.cycle[2] for r in b) / len(b)
        print(f"mean: A {rate_a:.0f} ann/s, B {rate_b:.0f} ann/s ({100 * (rate_b / rate_a - 1):+.0f}%); "
              f"cycle p99 A {p99_a:.0f} ms, B {p99_b:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,2000", help="import sizes (images); empty: no import")
    parser.add_argument("--stores", default="local,s3")
    parser.add_argument("--serve-rounds", type=int, default=1, help="A/B pairs of the serving case; 0: none")
    parser.add_argument("--serve-clients", type=int, default=32)
    parser.add_argument("--serve-seconds", type=float, default=10.0)
    parser.add_argument("--serve-tasks", type=int, default=2000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    stores = args.stores.split(",") if sizes else []
    results = []
    with tempfile.TemporaryDirectory(prefix="qistas-media-bench-") as raw:
        work = Path(raw)
        moto = None
        s3_url = None
        if "s3" in stores:
            import boto3
            from moto.server import ThreadedMotoServer

            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
            moto.start()
            host, port = moto.get_host_and_port()
            s3_url = f"http://{host}:{port}"
            boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="k",
                         aws_secret_access_key="s").create_bucket(Bucket=BUCKET)
        try:
            for store in stores:
                for n in sizes:
                    row = run_one(n, store, work, s3_url)
                    print(json.dumps(row), flush=True)
                    results.append(row)
        finally:
            if moto is not None:
                moto.stop()
    table = ["| store | images (distinct) | seconds | images/s | zip (MB) | server RSS before (MB) | "
             "server peak RSS (MB) |", "|---|---:|---:|---:|---:|---:|---:|"]
    table += [f"| {r['store']} | {r['images']:,} ({r['distinct']:,}) | {r['seconds']} | {r['per_s']:,} | "
              f"{r['zip_mb']} | {r['rss_before_mb']} | {r['rss_peak_mb']} |" for r in results]
    if results:
        print("\n".join(table), flush=True)
    if args.serve_rounds:
        serve_rounds(args.serve_rounds, args.serve_clients, args.serve_seconds, args.serve_tasks)


if __name__ == "__main__":
    main()
