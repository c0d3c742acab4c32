"""``qistas serve`` as a user starts it: a real process, on a real port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from qistas.cli import main
from qistas.config import get_settings
from qistas.db.engine import Database
from qistas.db.unit_of_work import write
from qistas.domain.deployment import settle_secret_key
from qistas.serving import MULTIPROCESS_DIR, prepare_metrics
from tests.api.helpers import process_alive
from tests.api.test_engine_processes import free_port, serve_processes
from tests.factories import new_user


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


@pytest.mark.slow
def test_kept_alive_connections_are_closed_now_and_then_with_several_processes(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--workers 2``, QISTAS_KEEPALIVE_REQUESTS=4: each connection is answered ``Connection:
    close`` after 2 to 6 requests, and the client's next request, on a new connection, is
    answered as usual. With one process, never (there is nowhere else to go)."""
    monkeypatch.setenv("QISTAS_KEEPALIVE_REQUESTS", "4")
    for workers, closes in (("2", range(40 // 6, 40 // 2 + 1)), ("1", range(0, 1))):
        with serve_processes(db_url, tmp_path, 1, "--workers", workers) as (url,), \
                httpx.Client(base_url=url) as client:
            answers = [client.get("/healthz") for _ in range(40)]
        assert all(answer.status_code == 200 for answer in answers)
        closed = [n for n, answer in enumerate(answers) if answer.headers.get("connection") == "close"]
        assert len(closed) in closes, (workers, closed)
        gaps = [b - a for a, b in zip([-1, *closed], closed, strict=False)]
        assert all(2 <= gap <= 6 for gap in gaps), (workers, closed)


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


def test_json_logs_of_a_served_request_carry_its_id_and_no_secret(database: Database, db_url: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``QISTAS_LOG_FORMAT=json``: uvicorn's lines and ours are JSON objects; the request line
    has the caller's id, the route template, the status and the user, never the token."""
    monkeypatch.setenv("QISTAS_LOG_FORMAT", "json")
    user, token = new_user(database, email="logged@crowd.test", role="annotator")
    with serve_processes(db_url, tmp_path, 1, "--log-level", "info") as (url,):
        me = httpx.get(url + "/api/v1/me", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "me-7"})
        assert me.status_code == 200 and me.headers["x-request-id"] == "me-7"
        assert httpx.get(url + "/api/v1/tasks/5", headers={"X-Request-ID": "anon-8"}).status_code == 401
    text = (tmp_path / "server-0.log").read_text()
    assert token not in text
    lines = text.splitlines()
    # Everything but the one line `qistas serve` prints for the person who started it.
    records = [json.loads(line) for line in lines if not line.startswith("Qistas is serving on ")]
    assert len(records) == len(lines) - 1
    assert any(r["logger"] == "uvicorn.error" and "startup complete" in r["message"] for r in records)
    requests = {r["request_id"]: r for r in records if r["logger"] == "qistas.request"}
    assert {key: requests["me-7"][key] for key in ("method", "path", "status", "user_id", "level")} == {
        "method": "GET", "path": "/api/v1/me", "status": 200, "user_id": user.id, "level": "info"}
    assert requests["anon-8"]["path"] == "/api/v1/tasks/{task_id}" and requests["anon-8"]["status"] == 401
    assert "user_id" not in requests["anon-8"]


def test_at_info_other_libraries_still_log_warnings_only() -> None:
    """At info the HTTP client would log each webhook URL it calls, query and all."""
    probe = ("import logging, logging.config; from qistas.logs import logging_config; "
             "logging.config.dictConfig(logging_config(log_format='json', level='info')); "
             "print([logging.getLogger(n).isEnabledFor(logging.INFO) for n in ('qistas.request', 'uvicorn.error', "
             "'httpx', 'sqlalchemy.engine.Engine')])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[True, True, False, False]"


def _healthz_count(folder: Path) -> float:
    """The health checks counted in the metric files of ``folder``."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(folder))
    return sum(sample.value for family in registry.collect() for sample in family.samples
               if sample.name == "qistas_http_requests_total" and sample.labels["route"] == "/healthz")


@pytest.mark.slow
def test_one_scrape_adds_up_every_worker_process(db_url: str, tmp_path: Path) -> None:
    """``--workers 2``: whichever process answers the scrape reports both processes' requests."""
    with serve_processes(db_url, tmp_path, 1, "--workers", "2") as (url,):
        folder = tmp_path / f"metrics-{url.rsplit(':', 1)[1]}"
        deadline = time.monotonic() + 60
        while True:  # the second worker process may still be starting on a loaded machine
            pids = {path.stem.rsplit("_", 1)[1] for path in folder.glob("*.db")}
            if len(pids) == 2 or time.monotonic() > deadline:
                break
            httpx.get(url + "/healthz")
            time.sleep(0.2)
        assert len(pids) == 2, pids
        sent = 0
        per_process: dict[str, float] = {}
        with ThreadPoolExecutor(16) as pool:
            for _ in range(10):  # until each process has answered some (new connections spread over both)
                assert all(pool.map(lambda _: httpx.get(url + "/healthz").status_code == 200, range(40)))
                sent += 40
                # A request is counted once its answer is sent: the client may read the answer
                # first. Read the counts until two readings agree.
                counted: dict[str, float] = {}
                while counted != per_process or not counted:
                    counted = dict(per_process)
                    time.sleep(0.1)
                    per_process = {pid: _count_of(tmp_path, folder, pid) for pid in pids}
                if all(per_process.values()):
                    break
        assert all(per_process.values()), per_process
        # Counted since start: the health checks `serve_processes` made while waiting, then ours.
        total = sum(per_process.values())
        assert total >= sent
        for _ in range(6):  # on new connections: both processes answer some of the scrapes
            scraped = {(s.name, s.labels.get("route"), s.labels.get("status")): s.value
                       for family in text_string_to_metric_families(httpx.get(url + "/metrics").text)
                       for s in family.samples}
            assert scraped[("qistas_http_requests_total", "/healthz", "2xx")] == total


def _count_of(tmp_path: Path, folder: Path, pid: str) -> float:
    """The /healthz requests one worker process has counted, from a copy of its metric files."""
    alone = tmp_path / f"alone-{pid}"
    shutil.rmtree(alone, ignore_errors=True)
    alone.mkdir()
    for path in folder.glob(f"*_{pid}.db"):
        shutil.copy(path, alone)
    return _healthz_count(alone)


def test_serve_starts_its_metric_files_afresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MULTIPROCESS_DIR, "")  # put back as it was after the test
    stale = tmp_path / "metrics-8123" / "counter_4242.db"
    stale.parent.mkdir()
    stale.write_bytes(b"left by the last run")
    folder = prepare_metrics(tmp_path, 8123)
    assert folder == stale.parent and list(folder.iterdir()) == []
    assert os.environ[MULTIPROCESS_DIR] == str(folder)


def _argv(process: Path) -> list[bytes]:
    try:
        return (process / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return []


def _background_of(server_pid: int) -> list[int]:
    """Processes running ``qistas worker --parent SERVER_PID``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _argv(entry)
        if b"worker" in argv and b"--parent" in argv and argv[argv.index(b"--parent") + 1] == str(server_pid).encode():
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_serve_runs_the_background_work_in_a_process_that_does_not_outlive_it(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    """An export job is written by the ``qistas worker`` process that ``qistas serve`` started,
    not by a thread of the server; when the server dies, even by SIGKILL, so does its worker."""
    from tests.factories import make_tenant

    with serve_processes(db_url, tmp_path, 1) as (url,):
        port = url.rsplit(":", 1)[1].encode()
        server_pid = next(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _argv(p)[-2:] == [
            b"--port", port])
        background = _background_of(server_pid)
        assert len(background) == 1
        with make_tenant(database, url, "acme") as tenant:
            project = tenant.project()["id"]
            tenant.add_tasks(project, [{"data": {"text": f"t{i}"}} for i in range(20)])
            job = tenant.owner.post(f"/projects/{project}/exports", json={"format": "jsonl"}).json()["id"]
            deadline = time.monotonic() + 60
            while (state := tenant.owner.get(f"/exports/{job}").json())["status"] != "done":
                assert state["status"] in ("queued", "running") and time.monotonic() < deadline, state
                time.sleep(0.2)
        os.kill(server_pid, 9)
        deadline = time.monotonic() + 10
        while process_alive(background[0]):
            assert time.monotonic() < deadline, "the worker outlived its server"
            time.sleep(0.1)


def test_a_second_server_with_a_data_folder_of_its_own_refuses_another_secret_key(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    """Two servers on one database, each with its own QISTAS_HOME and no QISTAS_SECRET_KEY:
    each would generate a key of its own, and pseudonyms, media links and sealed secrets would
    differ between them. The second refuses to start, in one line naming the fix; given the
    first one's key, it is accepted."""
    first, second = tmp_path / "first", tmp_path / "second"
    settings = get_settings(home=first, database_url=db_url, secret_key=None)  # as `qistas serve` builds it
    assert settings.secret_key is not None
    write(database, lambda session: settle_secret_key(session, current=settings.secret_key or ""))
    env = {**os.environ, "QISTAS_HOME": str(second), "QISTAS_DATABASE_URL": db_url}
    env.pop("QISTAS_SECRET_KEY", None)
    command = [sys.executable, "-c", "from qistas.cli import main; main()", "serve", "--port", str(free_port())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1 and "serving" not in done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: this database is used with another secret key") and "QISTAS_SECRET_KEY" in line
    assert (first / "secret_key").read_text().strip() not in line
    same = CliRunner().invoke(main, ["rotate-secrets"], env={
        "QISTAS_HOME": str(second), "QISTAS_DATABASE_URL": db_url,
        "QISTAS_SECRET_KEY": (first / "secret_key").read_text().strip()})
    assert same.exit_code == 0, same.output
