"""Three ``qistas serve`` processes on one PostgreSQL and one object store, as deployed.

Each server has a data folder of its own (QISTAS_HOME) and runs the background work (webhook
dispatch, export jobs) in a thread of its own process; they share the database, the bucket
(moto's S3 server on the loopback) and the secret key.
Tasks with images are imported through one server, labelled through all three, their media
fetched through a server other than the one that signed the link; exports agree byte for
byte through every server (pseudonyms included), and an export job's file is downloaded
through servers that did not write it. Webhooks go to a receiver on the loopback that counts
what it acknowledged: each event exactly once.

Then one server is killed with SIGKILL in the middle of its work: an export job it claimed
(held at a table lock the test takes, so the kill lands mid-export, deterministically) and
webhook deliveries it is sending (the receiver holds that server's requests unanswered).
Nothing is lost: the survivors take the export over once its claim runs out, and send the
deliveries the dead server had claimed; every event is acknowledged exactly once.

PostgreSQL only: on SQLite several machines cannot share a database.
"""

from __future__ import annotations

import json
import os
import select as polling
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from qistas.db.engine import Database
from qistas.db.models import Delivery, ExportJob
from qistas.domain import signing
from tests.api.test_engine_processes import free_port, twin, wait_until_up
from tests.api.test_media import BOXES, png, upload
from tests.conftest import BACKEND, SECRET
from tests.factories import Tenant, make_tenant

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(BACKEND != "postgresql", reason="servers on several machines share PostgreSQL")]

BUCKET = "qistas-scaleout"
N = 6  # tasks labelled with all three servers up, and as many before the kill
JOB_LEASE = 3.0  # QISTAS_JOB_LEASE_SECONDS: a dead server's export is taken over this long after
WEBHOOK_TIMEOUT = 3.0  # a dead server's deliveries are sent again 4 × this + JOB_LEASE after its claim


# --- the loopback services: object store, webhook receiver --------------------------------------


@contextmanager
def object_store() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k",
                          aws_secret_access_key="s")
    client.create_bucket(Bucket=BUCKET)
    client.close()
    try:
        yield url
    finally:
        server.stop()


@dataclass
class Receiver:
    """Answers 200, or 503 while ``failing``; holds unanswered the requests of the server
    ``holding`` names until ``release``. A request is acknowledged when its 200 went to a
    sender still connected: a held request whose sender died is dropped, never acknowledged."""

    url: str = ""
    secret: str = ""
    failing: bool = False
    holding: Callable[[int], bool] | None = None  # the sender's port -> hold it?
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: Counter[str] = field(default_factory=Counter)
    held: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    bad_signatures: list[str] = field(default_factory=list)

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: acknowledged {sum(self.acknowledged.values())}, held {self.held}")
            time.sleep(0.05)


def _still_connected(connection: socket.socket) -> bool:
    readable, _, _ = polling.select([connection], [], [], 0)
    if not readable:
        return True
    try:
        return connection.recv(1, socket.MSG_PEEK) != b""  # b"": the sender closed (or died)
    except OSError:
        return False


@contextmanager
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            event = self.headers["Qistas-Event-Id"]
            if not signing.verify(found.secret, body, self.headers[signing.HEADER], now=int(time.time())):
                found.bad_signatures.append(event)
            holding = found.holding
            if holding is not None and holding(self.client_address[1]):
                with found.lock:
                    found.held.append(event)
                found.released.wait(60)
            if found.failing and not found.released.is_set():
                self._answer(503)
                return
            if not _still_connected(self.connection):
                with found.lock:
                    found.dropped.append(event)
                self.close_connection = True
                return
            self._answer(200)
            with found.lock:
                found.acknowledged[event] += 1

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield found
    finally:
        found.released.set()
        server.shutdown()
        server.server_close()


# --- which server process owns a connection (Linux /proc) ----------------------------------------


def group_pids(pgid: int) -> list[int]:
    """The processes of a server: ``qistas serve`` and any worker process it started."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                pids.append(int(entry))
    return pids


def owns_connection(pgid: int, local_port: int, remote_port: int) -> bool:
    """Whether a process of the group holds the TCP connection from ``local_port`` to ``remote_port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == local_port and int(cols[2].rsplit(":", 1)[1], 16) == remote_port:
                inodes.add(f"socket:[{cols[9]}]")
    for pid in group_pids(pgid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return True
            except OSError:
                continue
    return False


# --- the servers ------------------------------------------------------------------------------------


@contextmanager
def servers(db_url: str, folder: Path, s3_url: str, count: int) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """``qistas serve`` processes, each with its own QISTAS_HOME and in a process group of its own."""
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for n in range(count):
            home = folder / f"home-{n}"
            home.mkdir()
            port = free_port()
            env = {
                **os.environ, "QISTAS_DATABASE_URL": db_url, "QISTAS_HOME": str(home), "QISTAS_SECRET_KEY": SECRET,
                "QISTAS_MEDIA_S3_BUCKET": BUCKET, "QISTAS_MEDIA_S3_ENDPOINT_URL": s3_url,
                "QISTAS_MEDIA_S3_ACCESS_KEY_ID": "k", "QISTAS_MEDIA_S3_SECRET_ACCESS_KEY": "s",
                "QISTAS_WEBHOOK_ALLOW_PRIVATE": "true", "QISTAS_WORKER_POLL_SECONDS": "0.1",
                "QISTAS_JOB_LEASE_SECONDS": str(JOB_LEASE), "QISTAS_WEBHOOK_TIMEOUT_SECONDS": str(WEBHOOK_TIMEOUT),
                "QISTAS_WEBHOOK_RETRY_BASE_SECONDS": "0.2", "QISTAS_WEBHOOK_RETRY_MAX_DELAY_SECONDS": "0.5",
                "QISTAS_REFIT_INTERVAL_SECONDS": "0", "QISTAS_CURSOR_SETTLE_SECONDS": "0",
                # the background work in a thread of each server: three processes to start, not six
                "QISTAS_BACKGROUND_PROCESS": "false",
            }
            with open(folder / f"server-{n}.log", "wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-c", "from qistas.cli import main; main()", "serve", "--port", str(port)],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            started.append((f"http://127.0.0.1:{port}", proc))
        for n, (url, proc) in enumerate(started):
            wait_until_up(url, proc, folder / f"server-{n}.log")
        yield started
    finally:
        for _, proc in started:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server (and any worker process of its own) at once, as a machine that loses power."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while group_pids(proc.pid):
        assert time.monotonic() < deadline, "the killed server's worker process is still there"
        time.sleep(0.02)


def until(check: Callable[[], Any], what: str, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


# --- the test ----------------------------------------------------------------------------------------


def label(tenant: Tenant, pid: int, clients: list[list[httpx.Client]], urls: list[str], n: int) -> int:
    """Annotators take on one server, fetch the image through the next, submit through the third."""
    done = 0
    for k in range(n):
        via = clients[k % len(clients)]
        taken = via[k % 3].post(f"/projects/{pid}/assignments")
        if taken.status_code == 204:
            continue
        assert taken.status_code == 201, taken.text
        data = taken.json()["task"]["data"]
        image = httpx.get(urls[(k + 1) % 3] + data["image"], timeout=30)  # signed by another server
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG"), image.text
        box = {"x": 1, "y": 1, "w": 3, "h": 3, "label": "cat"}
        sent = via[(k + 2) % 3].post(f"/assignments/{taken.json()['id']}/submit", json={"answer": {"boxes": [box]}})
        assert sent.status_code == 201, sent.text
        done += 1
    return done


def export_done(client: httpx.Client, job_id: int) -> dict[str, Any] | None:
    job = client.get(f"/exports/{job_id}").json()
    assert job["status"] in ("queued", "running", "done"), job
    return job if job["status"] == "done" else None  # type: ignore[no-any-return]


def annotator_names(jsonl: str) -> set[str]:
    return {a["annotator"] for line in jsonl.splitlines() for a in json.loads(line)["annotations"]}


def test_three_servers_share_one_database_and_one_object_store(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        s3_url = stack.enter_context(object_store())
        hooks = stack.enter_context(receiver())
        started = stack.enter_context(servers(db_url, tmp_path, s3_url, 3))
        urls = [url for url, _ in started]
        tenant = stack.enter_context(make_tenant(database, urls[0], "acme", n_annotators=3))
        owners = [stack.enter_context(twin(tenant.owner, url + "/api/v1")) for url in urls]
        workers = [[stack.enter_context(twin(a, url + "/api/v1")) for url in urls] for a in tenant.annotators]

        # --- all three up: each job once, every server answers for what another wrote ---
        pid = owners[0].post("/projects", json={"name": "pictures", "task": BOXES,
                                                "redundancy": {"min": 1, "max": 1}}).json()["id"]
        created = owners[0].post(f"/projects/{pid}/webhooks", json={"url": hooks.url + "/hook",
                                                                     "events": ["task.completed"]})
        assert created.status_code == 201, created.text
        hooks.secret = created.json()["secret"]
        pictures = {f"p{i}.png": png(12 + i, 10, (i, 40, 90)) for i in range(N)}
        imported = upload(owners[1], pid, [{"unique_id": f"u{i}", "data": {"image": f"p{i}.png"}} for i in range(N)],
                          pictures)
        assert imported.status_code == 201 and imported.json()["media"] == N, imported.text
        assert label(tenant, pid, workers, urls, N) == N
        hooks.wait_for(lambda: len(hooks.acknowledged) == N, "every completion announced")
        assert set(hooks.acknowledged.values()) == {1} and hooks.held == hooks.dropped == hooks.bad_signatures == []

        streamed = [o.get(f"/projects/{pid}/export", params={"format": "jsonl"}) for o in owners]
        assert streamed[0].status_code == 200 and len(streamed[0].text.splitlines()) == N
        assert streamed[0].content == streamed[1].content == streamed[2].content  # the same pseudonyms
        job = owners[0].post(f"/projects/{pid}/exports", json={"format": "jsonl"}).json()
        until(lambda: export_done(owners[1], job["id"]), "the export job finished")
        with database.reader() as session:
            first = session.get(ExportJob, job["id"])
        files = [o.get(f"/exports/{job['id']}/file") for o in owners]
        assert all(f.status_code == 200 for f in files), [f.text for f in files]
        assert files[0].content == files[1].content == files[2].content
        assert annotator_names(files[0].text) == annotator_names(streamed[0].text) and len(
            annotator_names(files[0].text)) == 3

        # --- one server killed mid-work ---
        more = upload(owners[2], pid, [{"unique_id": f"v{i}", "data": {"image": f"p{i}.png"}} for i in range(N)],
                      pictures)
        assert more.status_code == 201, more.text
        hooks.failing = True  # the receiver is down a while: the deliveries are retried, due again and again
        assert label(tenant, pid, workers, urls, N) == N
        pg = make_url(db_url)
        with database.engine.connect() as blocker:
            blocker.execute(text("SET lock_timeout = '20s'"))
            blocker.execute(text("LOCK TABLE annotations IN ACCESS EXCLUSIVE MODE"))
            job = owners[0].post(f"/projects/{pid}/exports", json={"format": "jsonl"}).json()
            stuck = until(lambda: database_waiters(database), "an export worker waiting on the lock")
            victim = next(n for n, (_, proc) in enumerate(started)
                          if any(owns_connection(proc.pid, port, pg.port or 5432) for port in stuck))
            pgid = started[victim][1].pid
            hooks.holding = lambda port: owns_connection(pgid, port, int(hooks.url.rsplit(":", 1)[1]))
            hooks.wait_for(lambda: bool(hooks.held), "the victim sending a delivery")
            kill(started[victim][1])
            blocker.rollback()
        hooks.holding = None
        hooks.failing = False
        hooks.released.set()
        alive = [o for n, o in enumerate(owners) if n != victim]

        finished = until(lambda: export_done(alive[0], job["id"]), "the export taken over and finished", timeout=60)
        downloads = [o.get(f"/exports/{job['id']}/file") for o in alive]
        assert downloads[0].content == downloads[1].content and len(downloads[0].text.splitlines()) == 2 * N
        hooks.wait_for(lambda: len(hooks.acknowledged) == 2 * N, "every completion announced after the kill",
                       timeout=60)
        stored = stack.enter_context(closing(boto3.client(
            "s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")))
        keys = [o["Key"] for o in stored.list_objects_v2(Bucket=BUCKET, Prefix="exports/")["Contents"]]

    assert set(hooks.acknowledged.values()) == {1}  # each event acknowledged once, however often sent
    assert hooks.dropped and set(hooks.dropped) <= set(hooks.acknowledged)  # the victim's were sent again
    assert hooks.bad_signatures == []
    with database.reader() as session:
        taken_over = session.get(ExportJob, job["id"])
        assert taken_over is not None and taken_over.attempts >= 2 and finished["size_bytes"] > 0
        assert Counter(session.scalars(select(Delivery.status))) == Counter({"delivered": 2 * N})
        # One file per job in the store: the attempt killed mid-export put nothing there.
        assert sorted(keys) == sorted([first.file_key, taken_over.file_key])  # type: ignore[union-attr]


def database_waiters(database: Database) -> list[int]:
    """Client ports of the connections waiting on the test's lock of the annotations table."""
    with database.engine.connect() as connection:
        # By the lock each waits for (a long statement's text is cut at 1 kB in pg_stat_activity).
        rows = connection.execute(text(
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND l.relation = 'annotations'::regclass "
            "AND a.datname = current_database()")).scalars().all()
    return [int(port) for port in rows if port]
