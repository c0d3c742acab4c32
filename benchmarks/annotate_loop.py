"""The annotation loop under load: K annotators doing take -> submit against a real server.

For each database (SQLite under a temporary QISTAS_HOME; PostgreSQL on a fresh database
when one is reachable) and each K, a fresh ``qistas serve --workers N`` is started, N tasks
are imported (redundancy min = max = 3) and K annotator clients loop take -> submit for a
fixed time. Printed: annotations per second, p50/p95/p99 latency of a cycle and of each
request, the fastest and slowest annotator's mean cycle, errors (any status other than
2xx), invariant violations found in the database afterwards, the server's peak memory
(all its processes), its CPU per answer and, when PostgreSQL runs on this machine, the
database's (``--server-cpus`` keeps the server on CPUs of its own). The same harness times
importing 10k and 100k tasks (JSONL upload) and exporting them (JSONL and CSV).

The clients run in a separate process on asyncio with a minimal HTTP/1.1 client (one
keep-alive connection per annotator), so that the load generator costs little CPU on a
small machine and the figures measure the server, not the client.

    python benchmarks/annotate_loop.py                 # the full table (a few minutes)
    python benchmarks/annotate_loop.py --quick         # a short run
    python benchmarks/annotate_loop.py --postgres postgresql://user:pw@host:5432/postgres
    python benchmarks/annotate_loop.py --only postgresql --workers 1,2,4 --clients 32   # a process sweep

``--workers`` takes a list: each run is repeated with that many server processes (one
``qistas serve --workers N`` on the one database; the kernel spreads the annotators'
connections across its processes). Each row gives the fairness ratio: the slowest
annotator's mean cycle over the fastest's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

DEFAULT_POSTGRES = "postgresql://qistas:qistas@127.0.0.1:5432/postgres"
LABELS = ["positive", "negative", "mixed"]
TEXT = "item {n}: the service was fine, the food less so"
# The task types the loop can run: the project's spec and the n-th answer an annotator gives
# (three answers per task, which mostly agree, as real ones do).
SPECS = {
    "classification": {"type": "classification", "labels": LABELS, "text_field": "text"},
    "spans": {"type": "spans", "labels": ["PER", "ORG", "LOC"], "text_field": "text"},
    "boxes": {"type": "boxes", "labels": ["car", "person"], "image_field": "image"},
}
# The types whose tasks show a file: the data field that names it (``--media``).
MEDIA_FIELD = {"boxes": "image"}
# The loop's server, unless the environment says otherwise: its annotators answer without a
# pause, one alone hundreds of requests a second, past the per-token limit that a person's pace
# never nears (100/s): raised, the limiter still running.
LOOP_SETTINGS = {"QISTAS_RATE_LIMIT_PER_TOKEN": "100000"}


def answer_of(kind: str, n: int) -> dict[str, Any]:
    if kind == "spans":
        spans = [{"start": 0, "end": 4, "label": "ORG"}, {"start": 12, "end": 19, "label": "PER"}]
        return {"spans": spans[: 1 + n % 2]}
    if kind == "boxes":
        return {"boxes": [{"x": 10 + n % 3, "y": 10, "w": 100, "h": 50, "label": "car"},
                          {"x": 200, "y": 40 + n % 2, "w": 30, "h": 80, "label": "person"}]}
    return {"label": LABELS[n % 3]}
# Measured on 2 cores: one SQLite server process beats two (writers are serialised anyway, and
# handing the write lock between processes costs CPU); PostgreSQL gains from a second one.
DEFAULT_WORKERS = {"sqlite": 1, "postgresql": 2}
QISTAS = [sys.executable, "-c", "from qistas.cli import main; main()"]


# --- the load generator (runs in its own process) -----------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: just enough protocol for JSON requests."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.auth = f"Authorization: Bearer {token}\r\n".encode() if token else b""
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n").encode()
        return await self._exchange(head + self.auth + b"\r\n" + body)

    async def get(self, path: str) -> tuple[int, bytes]:
        return await self._exchange(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n".encode() + self.auth + b"\r\n")

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, close, chunked = 0, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size + 2))
            await self.reader.readline()
            payload = b"".join(part[:-2] for part in parts)
        else:
            payload = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def annotator(conn: Connection, project_id: int, deadline: float, seed: int, out: dict[str, Any],
                    kind: str, browser: Connection | None = None) -> None:
    """Take -> submit until ``deadline``; with a ``browser`` connection, each task's image is
    fetched through its signed URL between the two, as the annotation page does."""
    take_path = f"/api/v1/projects/{project_id}/assignments"
    n = seed
    mine: list[float] = []  # this annotator's cycles: is every connection served alike?
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        status, payload = await conn.post(take_path)
        t1 = time.perf_counter()
        out["take"].append(t1 - t0)
        if status == 204:
            break
        if status != 201:
            out["errors"][f"take {status}"] = out["errors"].get(f"take {status}", 0) + 1
            await asyncio.sleep(0.01)
            continue
        taken = json.loads(payload)
        lease = taken["id"]
        if browser is not None:
            status, image = await browser.get(taken["task"]["data"][MEDIA_FIELD[kind]])
            t_media = time.perf_counter()
            out["media"].append(t_media - t1)
            out["media_bytes"] += len(image)
            if status != 200:
                out["errors"][f"media {status}"] = out["errors"].get(f"media {status}", 0) + 1
                continue
            t1 = t_media
        n += 1
        answer = json.dumps({"answer": answer_of(kind, n), "seconds": 1.0}).encode()
        status, payload = await conn.post(f"/api/v1/assignments/{lease}/submit", answer)
        t2 = time.perf_counter()
        out["submit"].append(t2 - t1)
        if status != 201:
            out["errors"][f"submit {status}"] = out["errors"].get(f"submit {status}", 0) + 1
            continue
        out["cycle"].append(t2 - t0)
        mine.append(t2 - t0)
        out["annotations"] += 1
    if mine:
        out["means"].append(sum(mine) / len(mine))
    await conn.close()
    if browser is not None:
        await browser.close()


async def load(url: str, project_id: int, tokens: list[str], seconds: float, kind: str,
               fetch: bool = False, start_at: float | None = None) -> dict[str, Any]:
    """The annotators' loops; ``start_at`` (``time.time()``): when to begin, so that the
    client processes of one run begin together."""
    parsed = httpx.URL(url)
    out: dict[str, Any] = {"take": [], "submit": [], "cycle": [], "means": [], "errors": {}, "annotations": 0,
                           "media": [], "media_bytes": 0}
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
    start = time.perf_counter()
    conns = [Connection(parsed.host, parsed.port or 80, token) for token in tokens]
    # The page's image requests: a connection of their own, with the annotator's credentials, as
    # a browser sends its session cookie with them (a request without any is limited per address).
    browsers = [Connection(parsed.host, parsed.port or 80, token) if fetch else None for token in tokens]
    await asyncio.gather(*[annotator(c, project_id, start + seconds, n * 7, out, kind, b)
                           for n, (c, b) in enumerate(zip(conns, browsers, strict=True))])
    out["elapsed"] = time.perf_counter() - start
    out["cpu"] = time.process_time()
    return out


def run_clients(url: str, project_id: int, tokens: list[str], seconds: float, kind: str,
                fetch: bool = False, processes: int = 1) -> dict[str, Any]:
    """The clients in ``processes`` child processes (the annotators dealt out between them, all
    starting at the same moment); their measurements come back as JSON and are merged. One
    asyncio process drives about 1,500-3,000 requests/s on one core: past that, the load
    generator and not the server would set the pace."""
    start_at = time.time() + 1.0 + 0.2 * processes  # each child imports and connects before it
    children = []
    for part in range(max(1, min(processes, len(tokens)))):
        job = json.dumps({"url": url, "project_id": project_id, "tokens": tokens[part::processes],
                          "seconds": seconds, "kind": kind, "fetch": fetch, "start_at": start_at})
        child = subprocess.Popen([sys.executable, __file__, "--client-run"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdin is not None
        child.stdin.write(job)
        child.stdin.close()
        children.append(child)
    outs = []
    for child in children:
        assert child.stdout is not None
        outs.append(json.loads(child.stdout.read()))
        if child.wait() != 0:
            raise RuntimeError("a client process failed")
    merged: dict[str, Any] = {"errors": {}, "annotations": 0, "media_bytes": 0, "elapsed": 0.0, "cpu": 0.0}
    for out in outs:
        for name in ("take", "submit", "cycle", "means", "media"):
            merged.setdefault(name, []).extend(out[name])
        for name in ("annotations", "media_bytes", "cpu"):
            merged[name] += out[name]
        merged["elapsed"] = max(merged["elapsed"], out["elapsed"])
        for error, count in out["errors"].items():
            merged["errors"][error] = merged["errors"].get(error, 0) + count
    return merged


# --- the server and its database ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def cpu_split(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of these processes so far."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            user, system = user + int(fields[11]), system + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    return sum(cpu_split(pids))


def postgres_cpu(postmaster: int | None, leave_out: tuple[int, ...] = ()) -> tuple[float, float]:
    """User and system CPU seconds of a cluster so far: its processes, and those that exited (the
    postmaster's reaped children: a connection's backend ends with it)."""
    if postmaster is None:
        return 0.0, 0.0
    user, system = cpu_split([pid for pid in process_tree(postmaster) if pid not in leave_out])
    try:
        with open(f"/proc/{postmaster}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        user, system = user + int(fields[13]) / tick, system + int(fields[14]) / tick
    except (OSError, IndexError, ValueError):
        pass
    return user, system


def postmaster_of(db_url: str) -> int | None:
    """The pid of the PostgreSQL server behind ``db_url`` when it runs on this machine (the parent
    of this connection's backend), else None."""
    engine = create_engine(sqlalchemy_url(db_url))
    try:
        with engine.connect() as connection:
            backend = int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
        with open(f"/proc/{backend}/stat") as handle:
            parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{parent}/cmdline", "rb") as handle:
            return parent if b"postgres" in handle.read() else None
    except (OSError, IndexError, ValueError):
        return None
    finally:
        engine.dispose()


def cpu_list(spec: str) -> list[int]:
    """'0-3,8' -> [0, 1, 2, 3, 8]: CPU numbers as taskset writes them."""
    cpus: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        cpus += range(int(first), int(last or first) + 1)
    return cpus


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


@dataclass
class Server:
    url: str
    home: str
    proc: subprocess.Popen[bytes]
    admin_token: str
    peak_rss_mb: float = 0.0

    def sample_rss(self) -> None:
        self.peak_rss_mb = max(self.peak_rss_mb, rss_mb(process_tree(self.proc.pid)))


@contextmanager
def serve(db_url: str | None, workers: int, cpus: list[int] | None = None,
          defaults: dict[str, str] | None = None) -> Iterator[Server]:
    """``qistas serve --workers N`` on a fresh home; ``cpus``: its processes kept on these CPUs;
    ``defaults``: settings for it where the environment has none."""
    with tempfile.TemporaryDirectory(prefix="qistas-bench-") as home:
        env = {**(defaults or {}), **os.environ, "QISTAS_HOME": home, "QISTAS_SECRET_KEY": secrets.token_urlsafe(40)}
        if db_url:
            env["QISTAS_DATABASE_URL"] = db_url
        made = subprocess.run([*QISTAS, "users", "create", "admin@bench.test", "--role", "admin", "--token"],
                              env=env, capture_output=True, text=True, check=True)
        token = made.stdout.strip().splitlines()[-1]
        port = free_port()
        log = open(Path(home) / "server.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen([*QISTAS, "serve", "--port", str(port), "--workers", str(workers)],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        server = Server(f"http://127.0.0.1:{port}", home, proc, token)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start:\n" + (Path(home) / "server.log").read_text())
                try:
                    if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            if workers > 1:
                time.sleep(1.5)  # let every worker finish starting, so none is measured warming up
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


@contextmanager
def fresh_database(backend: str, admin_url: str | None) -> Iterator[str | None]:
    """None for SQLite (the server's default file under its home), else a new PostgreSQL database."""
    if backend == "sqlite":
        yield None
        return
    assert admin_url is not None
    name = f"qistas_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(sqlalchemy_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(sqlalchemy_url(admin_url)).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sqlalchemy_url(url: str) -> str:
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def databases(postgres: str, only: str | None) -> list[str]:
    """The databases a benchmark runs on: SQLite, PostgreSQL when reachable, or ``only`` one;
    prints the machine it measures."""
    found = ["sqlite"]
    if postgres != "none" and postgres_reachable(postgres):
        found.append("postgresql")
    else:
        print(f"PostgreSQL not reachable at {postgres}: SQLite only")
    if only:
        found = [b for b in found if b == only]
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}", flush=True)
    return found


@contextmanager
def delayed(url: str, delay_ms: float | None) -> Iterator[str]:
    """``url``, or, with ``delay_ms``, a URL of the same database through a forwarder in this
    process (``tests/forwarder.py``) that holds each of its replies back that long: a database
    across a network, on this machine. The forwarder's CPU is in none of the tables' columns."""
    if not delay_ms:
        yield url
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: its tests' forwarder
    from tests.forwarder import Forwarder

    parsed = make_url(url)
    forwarder = Forwarder((parsed.host or "127.0.0.1", parsed.port or 5432), delay=delay_ms / 1000)
    forwarder.open()
    try:
        yield parsed.set(host="127.0.0.1", port=forwarder.port).render_as_string(hide_password=False)
    finally:
        forwarder.shut()


def postgres_reachable(url: str) -> bool:
    engine = create_engine(sqlalchemy_url(url))
    try:
        engine.connect().close()
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


# --- one measured scenario ----------------------------------------------------------------


def api(server: Server, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=server.url + "/api/v1", timeout=600,
                        headers={"Authorization": f"Bearer {token or server.admin_token}"})


def check(response: httpx.Response, status: int = 201) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} "
                           f"{response.text[:500]}")
    return response.json() if response.content else None


def jsonl(n_tasks: int, kind: str = "classification", predictions: bool = False) -> bytes:
    """The tasks to import; with ``predictions``, each with a model's prediction (a scored one)."""
    def data(n: int) -> dict[str, Any]:
        if kind == "boxes":
            return {"image": f"images/{n}.jpg", "width": 640, "height": 480}
        return {"text": TEXT.format(n=n)}

    def row(n: int) -> dict[str, Any]:
        made: dict[str, Any] = {"data": data(n), "unique_id": f"u{n}"}
        if predictions:
            made["predictions"] = [{"model": "bench-v1", "answer": answer_of(kind, n), "score": 0.9}]
        return made

    return b"".join(json.dumps(row(n)).encode() + b"\n" for n in range(n_tasks))


_MEDIA_ZIPS: dict[int, Path] = {}


def media_zip_of(n_tasks: int) -> Path:
    """A zip of ``n_tasks`` boxes tasks, each with an image of its own (640×480 JPEG, about
    the size the answers' boxes need), made once per process; what ``qistas import --media``
    sends."""
    if n_tasks in _MEDIA_ZIPS:
        return _MEDIA_ZIPS[n_tasks]
    import atexit
    import shutil

    from PIL import Image, ImageDraw

    from qistas.client.media import media_zip

    folder = Path(tempfile.mkdtemp(prefix="qistas-bench-images-"))
    atexit.register(shutil.rmtree, folder, True)
    rows = []
    for n in range(n_tasks):
        image = Image.new("RGB", (640, 480), (n % 256, (n // 256) % 256, 90))
        draw = ImageDraw.Draw(image)
        draw.rectangle((10 + n % 300, 10, 110 + n % 300, 60), fill=(200, 30, 30))
        draw.rectangle((200, 40, 230, 120 + n % 50), fill=(30, 30, 200))
        draw.text((20, 400), f"task {n}", fill=(255, 255, 255))
        name = f"images/{n // 1000}/{n}.jpg"
        (folder / "files" / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(folder / "files" / name, "JPEG", quality=85)
        rows.append(json.dumps({"unique_id": f"u{n}", "data": {"image": name}}))
    tasks = folder / "tasks.jsonl"
    tasks.write_text("\n".join(rows) + "\n")
    packed = media_zip(tasks, folder / "files")
    shutil.move(packed, folder / "media.zip")
    _MEDIA_ZIPS[n_tasks] = folder / "media.zip"
    return _MEDIA_ZIPS[n_tasks]


def new_project(server: Server, n_annotators: int, kind: str = "classification",
                inhouse: bool = False, review: dict[str, Any] | None = None,
                prefill: dict[str, Any] | None = None,
                active_learning: dict[str, Any] | None = None) -> tuple[httpx.Client, int, list[str]]:
    """A new organization, its owner and a project; annotators of the shared workforce, or of
    the organization itself (``inhouse``: their requests count against its request limits);
    ``review``: the project's review policy (settled tasks it holds wait for a reviewer);
    ``prefill``: whether annotators see the tasks' predictions as a pre-fill;
    ``active_learning``: the project's active-learning setting."""
    with api(server) as admin:
        slug = f"org{uuid.uuid4().hex[:6]}"
        check(admin.post("/orgs", json={"name": "Bench", "slug": slug}))
        owner = check(admin.post("/users", json={"email": f"owner@{slug}.test", "role": "owner", "org": slug}))
        owner_token = check(admin.post(f"/users/{owner['id']}/tokens"))["token"]
        tokens = []
        for n in range(n_annotators):
            user = check(admin.post("/users", json={"email": f"w{n}@{slug}.test", "role": "annotator",
                                                    **({"org": slug} if inhouse else {})}))
            tokens.append(check(admin.post(f"/users/{user['id']}/tokens"))["token"])
    owner_client = api(server, owner_token)
    project = check(owner_client.post("/projects", json={"name": "bench", "task": SPECS[kind],
                                                          "redundancy": {"min": 3, "max": 3},
                                                          "review": review or {}, "prefill": prefill or {},
                                                          "active_learning": active_learning or {}}))
    return owner_client, project["id"], tokens


DIALECTS = ("ar-EG", "ar-SA", "ar-MA", "ar-LB")


def route_project(server: Server, owner: httpx.Client, project_id: int, tokens: list[str]) -> list[str]:
    """The routing case: the annotators spread over 4 vendor pools, each with a dialect skill,
    and the project requiring those pools and one of the dialects at level 3. Also made: an
    annotator in a pool without the level and one outside the pools, each refused a take
    here; their tokens are returned (the violation check counts any lease of theirs)."""
    with api(server) as admin:
        pools = [check(admin.post("/pools", json={"name": f"vendor {d} {uuid.uuid4().hex[:4]}", "kind": "vendor"}))
                 for d in DIALECTS]
        for n, token in enumerate(tokens):
            with api(server, token) as worker:
                me = check(worker.get("/me"), 200)["id"]
            check(admin.put(f"/pools/{pools[n % 4]['id']}/members/{me}", json={}), 204)
            check(admin.put(f"/users/{me}/skills", json={"skills": [
                {"kind": "language", "tag": DIALECTS[n % 4], "level": 3 + n % 3}]}), 200)
        outsiders = []
        for n, in_pool in enumerate((True, False)):
            user = check(admin.post("/users", json={"email": f"out{n}-{uuid.uuid4().hex[:6]}@crowd.test",
                                                    "role": "annotator"}))
            outsiders.append(check(admin.post(f"/users/{user['id']}/tokens"))["token"])
            if in_pool:
                check(admin.put(f"/pools/{pools[0]['id']}/members/{user['id']}", json={}), 204)
            check(admin.put(f"/users/{user['id']}/skills", json={"skills": [
                {"kind": "language", "tag": DIALECTS[0], "level": 2}]}), 200)
    check(owner.patch(f"/projects/{project_id}", json={"routing": {
        "pools": [p["id"] for p in pools],
        "any": [{"kind": "language", "tag": d, "min_level": 3} for d in DIALECTS]}}), 200)
    time.sleep(1.1)  # the token cache's second
    return outsiders


def ineligible_served(db_url: str, project_id: int, outsiders: list[str], server: Server) -> int:
    """Leases of the project held by annotators its routing refuses (and takes they were granted)."""
    granted = 0
    ids = []
    for token in outsiders:
        with api(server, token) as worker:
            granted += worker.post(f"/projects/{project_id}/assignments").status_code != 404
            ids.append(check(worker.get("/me"), 200)["id"])
    engine = create_engine(sqlalchemy_url(db_url))
    try:
        with engine.connect() as conn:
            held = conn.execute(text("SELECT count(*) FROM assignments WHERE project_id = :p AND annotator_id IN "
                                     f"({','.join(str(i) for i in ids)})"), {"p": project_id}).scalar_one()
    finally:
        engine.dispose()
    return granted + int(held)


def violations(db_url: str, project_id: int, redundancy: int) -> int:
    engine = create_engine(sqlalchemy_url(db_url))
    try:
        with engine.connect() as conn:
            over = conn.execute(text(
                "SELECT count(*) FROM (SELECT task_id FROM annotations WHERE project_id = :p "
                "GROUP BY task_id HAVING count(*) > :r) AS t"), {"p": project_id, "r": redundancy}).scalar_one()
            twice = conn.execute(text(
                "SELECT count(*) FROM (SELECT task_id, annotator_id FROM annotations WHERE project_id = :p "
                "GROUP BY task_id, annotator_id HAVING count(*) > 1) AS t"), {"p": project_id}).scalar_one()
            counters = conn.execute(text(
                "SELECT count(*) FROM tasks t WHERE t.project_id = :p AND t.n_annotations <> "
                "(SELECT count(*) FROM annotations a WHERE a.task_id = t.id)"), {"p": project_id}).scalar_one()
            return int(over) + int(twice) + int(counters)
    finally:
        engine.dispose()


def triple(values: list[float]) -> tuple[float, float, float]:
    return percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)


def ms(values: tuple[float, ...]) -> str:
    return "/".join(f"{v:.0f}" if v >= 10 else f"{v:.1f}" for v in values)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass
class LoopResult:
    backend: str
    workers: int
    k: int
    annotations: int
    rate: float
    cycle: tuple[float, float, float]
    take: tuple[float, float, float]
    submit: tuple[float, float, float]
    errors: dict[str, int]
    violations: int
    peak_rss_mb: float
    server_cpu_ms: float  # server CPU time per annotation: the cost, whatever else runs on the machine
    client_cpu_ms: float
    # The fastest and slowest annotator's mean cycle, ms: a server that serves some
    # connections late every time shows it here before it shows in the p99.
    fairness: tuple[float, float]
    kind: str = "classification"
    media: tuple[float, float, float] | None = None  # the signed image GET, p50/p95/p99 ms (``fetch``)
    media_kb: float = 0.0  # mean size of an image fetched
    variant: str = ""  # "media": tasks with their images; "fetch": and each one fetched
    # Active learning on: CPU of the server's training process (qistas-active) per annotation,
    # included in server_cpu_ms, and the training passes it finished during the run.
    trainer_cpu_ms: float = 0.0
    passes: int = 0
    # PostgreSQL's CPU per annotation (its processes, the cluster's background ones included) when
    # it runs on this machine; None on SQLite or a database elsewhere.
    database_cpu_ms: float | None = None
    server_cpus: str = ""  # the CPUs the server's processes were kept on (--server-cpus)


def trainer_pids(pids: list[int]) -> list[int]:
    """The active-learning training processes among ``pids`` (they name themselves)."""
    found = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as handle:
                if handle.read().strip() == "qistas-active":
                    found.append(pid)
        except OSError:
            pass
    return found


@contextmanager
def other_writer(db_url: str, every: float | None) -> Iterator[None]:
    """Another writer of the database, as background jobs and imports are: every ``every``
    seconds it holds a write transaction for 20 ms (on SQLite, the write lock)."""
    if not every:
        yield
        return
    from qistas.db.engine import Database

    db = Database.from_url(sqlalchemy_url(db_url))
    stop = threading.Event()

    def write_now_and_then() -> None:
        while not stop.wait(every):
            with db.writer.begin() as session:
                session.execute(text("SELECT 1"))
                time.sleep(0.02)

    writer = threading.Thread(target=write_now_and_then, daemon=True)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()
        db.dispose()


def annotate_loop(backend: str, admin_url: str | None, k: int, n_tasks: int, seconds: float,
                  workers: int, profile: str | None = None, writer_every: float | None = None,
                  kind: str = "classification", inhouse: bool = False,
                  review: dict[str, Any] | None = None, predictions: bool = False,
                  routing: bool = False, media: bool = False, fetch: bool = False,
                  active_learning: bool = False, client_processes: int = 1,
                  server_cpus: list[int] | None = None) -> LoopResult:
    """One run; ``media``: the tasks come with their images (a zip import), so each lease
    carries a signed URL; ``fetch``: each annotator also GETs it, as the annotation page does;
    ``server_cpus``: the server's processes on the first ``workers`` of these CPUs, one each."""
    if (media or fetch) and kind not in MEDIA_FIELD:
        raise ValueError(f"--media needs a task type that shows a file: {', '.join(MEDIA_FIELD)}")
    pinned = server_cpus[:workers] if server_cpus else None
    with fresh_database(backend, admin_url) as db_url, serve(db_url, workers, pinned, LOOP_SETTINGS) as server:
        owner, project_id, tokens = new_project(server, k, kind, inhouse, review,
                                                {"mode": "always"} if predictions else None,
                                                {"enabled": True, "random_share": 0.1} if active_learning else None)
        outsiders = route_project(server, owner, project_id, tokens) if routing else []
        with closing(owner):
            if media or fetch:
                with media_zip_of(n_tasks).open("rb") as handle:
                    check(owner.post(f"/projects/{project_id}/tasks?format=zip", content=handle.read(),
                                     headers={"Content-Type": "application/zip"}))
            else:
                check(owner.post(f"/projects/{project_id}/tasks", content=jsonl(n_tasks, kind, predictions),
                                 headers={"Content-Type": "application/x-ndjson"}))
        server.sample_rss()
        sampler = RssSampler(server)
        spy = None
        if profile:  # sample the server's processes while the clients run (py-spy must be installed)
            spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.proc.pid), "--subprocesses",
                                    "--duration", str(int(seconds)), "--format", "raw", "--gil",
                                    "--output", f"{profile}-{backend}-{k}.txt"], stdout=subprocess.DEVNULL)
        url = db_url or f"sqlite:///{server.home}/qistas.db"
        tree = process_tree(server.proc.pid)
        cpu_before, trainer_before = cpu_seconds(tree), cpu_seconds(trainer_pids(tree))
        passes_before = active_passes(url, project_id)
        postmaster = postmaster_of(db_url) if db_url else None
        database_before = sum(postgres_cpu(postmaster))
        with sampler, other_writer(url, writer_every):
            out = run_clients(server.url, project_id, tokens, seconds, kind, fetch, client_processes)
        database_cpu = sum(postgres_cpu(postmaster)) - database_before
        tree = process_tree(server.proc.pid)
        server_cpu = cpu_seconds(tree) - cpu_before
        trainer_cpu = cpu_seconds(trainer_pids(tree)) - trainer_before
        passes = active_passes(url, project_id) - passes_before
        if spy is not None:
            spy.wait()
        bad = violations(url, project_id, 3)
        if routing:
            bad += ineligible_served(url, project_id, outsiders, server)
    return LoopResult(backend, workers, k, out["annotations"], out["annotations"] / out["elapsed"],
                      triple(out["cycle"]), triple(out["take"]), triple(out["submit"]), out["errors"], bad,
                      server.peak_rss_mb,
                      1000 * server_cpu / max(1, out["annotations"]),
                      1000 * out["cpu"] / max(1, out["annotations"]),
                      (1000 * min(out["means"], default=0.0), 1000 * max(out["means"], default=0.0)), kind,
                      triple(out["media"]) if fetch else None,
                      out["media_bytes"] / max(1, len(out["media"])) / 1000 if fetch else 0.0,
                      "fetch" if fetch else "media" if media else "",
                      1000 * trainer_cpu / max(1, out["annotations"]), passes,
                      1000 * database_cpu / max(1, out["annotations"]) if postmaster else None,
                      ",".join(map(str, pinned)) if pinned else "")


def active_passes(db_url: str, project_id: int) -> int:
    """Training passes of the project so far (its model version)."""
    engine = create_engine(sqlalchemy_url(db_url))
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT active_version FROM projects WHERE id = :p"),
                                          {"p": project_id}).scalar_one())
    finally:
        engine.dispose()


@dataclass
class RssSampler:
    server: Server
    task: Any = None
    running: bool = field(default=False)

    def __enter__(self) -> RssSampler:
        import threading

        self.running = True

        def loop() -> None:
            while self.running:
                self.server.sample_rss()
                time.sleep(0.25)

        self.task = threading.Thread(target=loop, daemon=True)
        self.task.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.running = False
        self.task.join()


@dataclass
class BulkResult:
    backend: str
    n_tasks: int
    import_s: float
    export_jsonl_s: float
    export_csv_s: float
    export_mb: float
    peak_rss_mb: float


def bulk(backend: str, admin_url: str | None, sizes: list[int], workers: int) -> list[BulkResult]:
    results = []
    with fresh_database(backend, admin_url) as db_url, serve(db_url, workers) as server, RssSampler(server):
        for size in sizes:
            owner, project_id, _ = new_project(server, 0)
            body = jsonl(size)
            with closing(owner):
                t0 = time.perf_counter()
                created = check(owner.post(f"/projects/{project_id}/tasks", content=body,
                                           headers={"Content-Type": "application/x-ndjson"}))
                import_s = time.perf_counter() - t0
                assert created["created"] == size, created
                timings, total = {}, 0
                for fmt in ("jsonl", "csv"):
                    t0 = time.perf_counter()
                    with owner.stream("GET", f"/projects/{project_id}/export", params={"format": fmt}) as r:
                        if r.status_code != 200:
                            raise RuntimeError(f"export: {r.status_code}")
                        total = sum(len(chunk) for chunk in r.iter_raw())
                    timings[fmt] = time.perf_counter() - t0
            results.append(BulkResult(backend, size, import_s, timings["jsonl"], timings["csv"], total / 1e6,
                                      server.peak_rss_mb))
    return results


# --- the report ---------------------------------------------------------------------------


def fairness_ratio(means: tuple[float, float]) -> float:
    """The slowest annotator's mean cycle over the fastest's (1.0: every connection served alike)."""
    fastest, slowest = means
    return slowest / fastest if fastest > 0 else float("nan")


def print_loop_table(rows: list[LoopResult], n_tasks: int, seconds: float) -> None:
    print(f"\nAnnotation loop: {n_tasks} tasks, redundancy 3, at most {seconds:.0f} s per run")
    print("| database | type | workers | K | annotations | ann/s | cycle p50/p95/p99 ms | take p50/p95/p99 ms | "
          "submit p50/p95/p99 ms | errors | violations | peak RSS MB | CPU ms/ann server+client | fairness | "
          "database CPU ms/ann |")
    print("|---|---|---:|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        errors = sum(r.errors.values())
        kind = r.kind + (f" ({r.variant})" if r.variant else "")
        print(f"| {r.backend} | {kind} | {r.workers} | {r.k} | {r.annotations} | {r.rate:.0f} | {ms(r.cycle)} | "
              f"{ms(r.take)} | "
              f"{ms(r.submit)} | {errors}{' ' + json.dumps(r.errors) if errors else ''} | {r.violations} | "
              f"{r.peak_rss_mb:.0f} | {r.server_cpu_ms:.1f}+{r.client_cpu_ms:.1f} | {fairness_ratio(r.fairness):.2f} | "
              f"{'–' if r.database_cpu_ms is None else f'{r.database_cpu_ms:.1f}'} |")
    for r in rows:
        if r.passes:
            print(f"Active learning, {r.backend} K={r.k}: {r.passes} training passes during the run; the training "
                  f"process used {r.trainer_cpu_ms:.1f} of the server's {r.server_cpu_ms:.1f} CPU ms per annotation")
    print("\nEach annotator's mean cycle, fastest to slowest (ms): "
          + "; ".join(f"{r.backend} workers={r.workers} K={r.k} {ms(r.fairness).replace('/', '–')}" for r in rows))
    pinned = [r for r in rows if r.server_cpus]
    if pinned:
        print("The server's processes on CPUs: " + "; ".join(f"{r.backend} workers={r.workers} K={r.k} "
                                                             f"{r.server_cpus}" for r in pinned))
    fetched = [r for r in rows if r.media is not None]
    if fetched:
        print("Signed image GET p50/p95/p99 ms (mean KB): "
              + "; ".join(f"{r.backend} K={r.k} {ms(r.media or ())} ({r.media_kb:.0f})" for r in fetched))


def print_bulk_table(rows: list[BulkResult]) -> None:
    print("\nImport (JSONL upload) and export")
    print("| database | tasks | import s | tasks/s | export jsonl s | export csv s | csv MB | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.backend} | {r.n_tasks} | {r.import_s:.2f} | {r.n_tasks / r.import_s:.0f} | "
              f"{r.export_jsonl_s:.2f} | {r.export_csv_s:.2f} | {r.export_mb:.1f} | {r.peak_rss_mb:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: fewer tasks, K, seconds and sizes")
    parser.add_argument("--workers", help="comma-separated numbers of server processes (qistas serve --workers), "
                        f"each a run of its own; default: {DEFAULT_WORKERS['sqlite']} on SQLite, "
                        f"{DEFAULT_WORKERS['postgresql']} on PostgreSQL")
    parser.add_argument("--tasks", type=int, default=10000, help="tasks per annotation-loop run")
    parser.add_argument("--clients", default="1,8,32", help="comma-separated K values")
    parser.add_argument("--types", default="classification,spans,boxes",
                        help="comma-separated task types of the loop (the first at every K, the others at the "
                        "largest K only)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each annotation-loop run")
    parser.add_argument("--import-sizes", default="10000,100000", help="comma-separated import sizes")
    parser.add_argument("--postgres", default=os.environ.get("QISTAS_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
                        help="PostgreSQL server URL (a fresh database is made on it); 'none' to skip")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="run one database only")
    parser.add_argument("--skip-bulk", action="store_true", help="skip the import/export timings")
    parser.add_argument("--profile", metavar="PREFIX", help="record a py-spy profile of the server per run")
    parser.add_argument("--other-writer", type=float, metavar="SECONDS",
                        help="another process writes every SECONDS, holding the write lock 20 ms each time")
    parser.add_argument("--inhouse", action="store_true",
                        help="annotators of the project's own organization instead of the shared workforce")
    parser.add_argument("--review", type=json.loads, metavar="JSON",
                        help='the project\'s review policy, e.g. \'{"share": 0.1, "below_confidence": 0.9, '
                             '"disagreement": true, "probation": 20}\'')
    parser.add_argument("--predictions", action="store_true",
                        help="import each task with a model's prediction, shown as a pre-fill (mode always)")
    parser.add_argument("--routing", action="store_true",
                        help="the annotators in 4 vendor pools with dialect skills, the project routed to them "
                        "(docs/workforce.md); violations also count leases served to annotators it refuses")
    parser.add_argument("--media", action="store_true",
                        help="image types: import the tasks with their images (a zip), so leases carry signed URLs")
    parser.add_argument("--fetch-media", action="store_true",
                        help="with --media: each annotator also GETs its task's signed image URL before answering")
    parser.add_argument("--active-learning", action="store_true",
                        help="active learning on for the project (classification): the background worker retrains "
                             "every 20 completed tasks, checking each second, and the claim serves by its ranks")
    parser.add_argument("--client-processes", type=int, default=1,
                        help="load-generator processes, the annotators dealt out between them (one drives "
                             "about 1,500-3,000 requests/s on one core; use more on a many-core machine)")
    parser.add_argument("--server-cpus", type=cpu_list, metavar="LIST",
                        help="keep the server's N processes on the first N of these CPUs, one each (e.g. 0-7; "
                             "run the rest under taskset on the others: servers measured on cores of their own)")
    parser.add_argument("--delay-ms", type=float, metavar="MS",
                        help="PostgreSQL through a forwarder that holds each of its replies back MS: a database on "
                             "another machine (the forwarder's CPU is neither the server's nor the database's)")
    parser.add_argument("--client-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_run:
        job = json.loads(sys.stdin.read())
        print(json.dumps(asyncio.run(load(job["url"], job["project_id"], job["tokens"], job["seconds"],
                                          job["kind"], job.get("fetch", False), job.get("start_at")))))
        return 0
    if args.active_learning:  # the servers started below inherit the environment
        os.environ.setdefault("QISTAS_ACTIVE_LEARNING_INTERVAL_SECONDS", "1")  # 0: ranked claim, no training
        os.environ.setdefault("QISTAS_ACTIVE_LEARNING_EVERY", "20")
    if args.quick:
        args.tasks, args.seconds, args.clients, args.import_sizes = 300, 4.0, "1,8", "10000"
    with delayed(args.postgres, args.delay_ms if args.postgres != "none" else None) as postgres:
        return measure(args, postgres)


def measure(args: argparse.Namespace, postgres: str) -> int:
    """Every run the arguments ask for, against ``postgres`` (and SQLite); its tables printed."""
    ks = [int(k) for k in args.clients.split(",")]
    sizes = [int(s) for s in args.import_sizes.split(",") if s]
    backends = databases(postgres, args.only)
    loops: list[LoopResult] = []
    bulks: list[BulkResult] = []
    sweep = [int(w) for w in args.workers.split(",")] if args.workers else None
    for backend in backends:
        counts = sweep or [DEFAULT_WORKERS[backend]]
        kinds = args.types.split(",")
        runs = [(kinds[0], k) for k in ks] + [(kind, max(ks)) for kind in kinds[1:]]
        for workers in counts:
            for kind, k in runs:
                loops.append(annotate_loop(backend, postgres, k, args.tasks, args.seconds, workers,
                                           args.profile, args.other_writer, kind, args.inhouse, args.review,
                                           args.predictions, args.routing, args.media or args.fetch_media,
                                           args.fetch_media, args.active_learning, args.client_processes,
                                           args.server_cpus))
                print_loop_table(loops[-1:], args.tasks, args.seconds)
        if not args.skip_bulk and sizes:
            bulks += bulk(backend, postgres, sizes, counts[0])
    print_loop_table(loops, args.tasks, args.seconds)
    if bulks:
        print_bulk_table(bulks)
    bad = sum(r.violations for r in loops)
    errors = sum(sum(r.errors.values()) for r in loops)
    print(f"\ninvariant violations: {bad}; errors: {errors}")
    return 1 if bad or errors else 0


if __name__ == "__main__":
    sys.exit(main())
