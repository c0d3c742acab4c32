"""The ``qistas`` command, run in-process with its home in a temporary folder."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, func, inspect, select

from qistas.cli import main
from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import Project, Task, User
from tests.conftest import SECRET, LiveServer, fresh_database
from tests.factories import Tenant, client_for


@pytest.fixture
def empty_db_url(tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all."""
    with fresh_database(tmp_path, None) as url:
        yield url


def run(args: list[str], home: Path, db_url: str, **env: str) -> Result:
    runner = CliRunner()
    return runner.invoke(main, args, env={"QISTAS_HOME": str(home), "QISTAS_DATABASE_URL": db_url,
                                          "QISTAS_SECRET_KEY": SECRET, "QISTAS_URL": None, "QISTAS_TOKEN": None,
                                          **env}, catch_exceptions=False)


def test_migrate_creates_the_schema_and_is_idempotent(tmp_path: Path, empty_db_url: str) -> None:
    first = run(["migrate"], tmp_path, empty_db_url)
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "database is up to date"
    engine = create_engine(empty_db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"organizations", "users", "api_tokens", "projects", "batches", "tasks", "assignments",
            "annotations", "audit_events", "alembic_version"} <= tables
    again = run(["migrate"], tmp_path, empty_db_url)
    assert again.exit_code == 0 and again.output.strip() == "database is up to date"


def test_default_database_lives_under_home(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["migrate"], env={"QISTAS_HOME": str(tmp_path), "QISTAS_DATABASE_URL": None,
                                                  "QISTAS_SECRET_KEY": None}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "qistas.db").is_file()
    secret = tmp_path / "secret_key"
    assert secret.is_file() and secret.stat().st_mode & 0o777 == 0o600


def test_demo_seeds_once_and_prints_working_tokens(tmp_path: Path, empty_db_url: str) -> None:
    first = run(["demo"], tmp_path, empty_db_url)
    assert first.exit_code == 0, first.output
    assert "Seeded the demo organization 'demo'." in first.output
    accounts = [line.split() for line in first.output.splitlines() if " token qst_" in line]
    assert [a[0] for a in accounts] == ["admin", "owner", "annotator", "annotator", "annotator"]
    tokens = {a[1]: a[-1] for a in accounts}
    credentials = tmp_path / "demo-credentials.txt"
    assert credentials.stat().st_mode & 0o777 == 0o600

    second = run(["demo"], tmp_path, empty_db_url)
    assert second.exit_code == 0, second.output
    assert "Seeded" not in second.output
    assert all(token in second.output for token in tokens.values())

    database = Database.from_url(empty_db_url)
    try:
        with database.reader() as session:
            assert session.scalar(select(func.count()).select_from(User)) == 5
            assert session.scalar(select(func.count()).select_from(Project)) == 1
            assert session.scalar(select(func.count()).select_from(Task)) == 50
        settings = Settings(home=tmp_path, database_url=empty_db_url, secret_key=SECRET)
        with LiveServer(settings, database) as live:
            with client_for(live.url, tokens["owner@demo.qistas.local"]) as owner:
                projects = owner.get("/projects").json()
                assert len(projects) == 1 and projects[0]["org"] == "demo"
                assert owner.get(f"/projects/{projects[0]['id']}/stats").json()["tasks_total"] == 50
            with client_for(live.url, tokens["annotator1@demo.qistas.local"]) as worker:
                taken = worker.post(f"/projects/{projects[0]['id']}/assignments")
                assert taken.status_code == 201, taken.text
    finally:
        database.dispose()


def test_demo_does_not_seed_a_database_that_has_users(tmp_path: Path, empty_db_url: str) -> None:
    created = run(["users", "create", "ops@instance.test", "--role", "admin"], tmp_path, empty_db_url)
    assert created.exit_code == 0, created.output
    demo = run(["demo"], tmp_path, empty_db_url)
    assert demo.exit_code == 0
    assert "The database already has users; no demo was seeded." in demo.output


def test_users_create_with_a_token_that_works(server: LiveServer, db_url: str, tmp_path: Path) -> None:
    typo = run(["users", "create", "Boss@X.test", "--role", "owner", "--org", "x", "--token"], tmp_path, db_url)
    assert typo.exit_code == 1 and "no organization 'x'" in typo.output and "--new-org" in typo.output
    result = run(["users", "create", "Boss@X.test", "--role", "owner", "--new-org", "x", "--token"], tmp_path,
                 db_url)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("created owner boss@x.test (id ")
    token = lines[-1]
    assert token.startswith("qst_")
    with client_for(server.url, token) as boss:
        assert boss.get("/me").json()["org"] == "x"
        assert boss.post("/projects", json={"name": "p", "task": {"type": "text"}}).status_code == 201
    # The org now exists: a second user joins it, without a token.
    member = run(["users", "create", "m@x.test", "--role", "member", "--org", "x", "--password", "long enough"],
                 tmp_path, db_url)
    assert member.exit_code == 0, member.output
    assert "qst_" not in member.output
    database = Database.from_url(db_url)
    try:
        with database.reader() as session:
            user = session.scalar(select(User).where(User.email == "m@x.test"))
            assert user is not None and user.password_hash is not None
            assert user.password_hash.startswith("$argon2id$")
    finally:
        database.dispose()


def test_users_create_errors(tmp_path: Path, db_url: str) -> None:
    assert run(["users", "create", "a@b.test", "--role", "owner"], tmp_path, db_url).exit_code == 1
    first = run(["users", "create", "a@b.test", "--role", "annotator"], tmp_path, db_url)
    assert first.exit_code == 0
    duplicate = run(["users", "create", "a@b.test", "--role", "annotator"], tmp_path, db_url)
    assert duplicate.exit_code == 1 and "a user with this email exists" in duplicate.output
    assert run(["users", "create", "c@b.test", "--role", "king"], tmp_path, db_url).exit_code == 2
    short = run(["users", "create", "d@b.test", "--role", "annotator", "--password", "short"], tmp_path, db_url)
    assert short.exit_code == 1 and "password" in short.output


def _token(client: httpx.Client) -> str:
    return str(client.headers["authorization"]).removeprefix("Bearer ")


def test_import_and_export_against_a_live_server(server: LiveServer, tenant: Tenant, tmp_path: Path) -> None:
    project = tenant.project(redundancy={"min": 1, "max": 1})
    pid = str(project["id"])
    source = tmp_path / "tasks.jsonl"
    source.write_text('{"data": {"text": "مرحبا"}, "unique_id": "a"}\n{"data": {"text": "=SUM(1)"}, '
                      '"unique_id": "b"}\n', encoding="utf-8")
    connect = ["--url", server.url, "--token", _token(tenant.owner)]
    first = run(["import", pid, str(source), *connect], tmp_path, "sqlite://")
    assert first.exit_code == 0, first.output
    assert first.output.strip().splitlines()[-1] == "created 2, duplicates 0"
    again = run(["import", pid, str(source)], tmp_path, "sqlite://", QISTAS_URL=server.url,
                QISTAS_TOKEN=_token(tenant.owner))
    assert again.output.strip().splitlines()[-1] == "created 0, duplicates 2"

    table = tmp_path / "more.txt"
    table.write_text("text,unique_id\nc,c\n", encoding="utf-8")
    output = run(["import", pid, str(table), "--format", "csv", *connect], tmp_path, "sqlite://").output
    assert output.strip().splitlines()[-1] == "created 1, duplicates 0"

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"data": {"text": "ok"}}\n{"data": {}}\n{"nope": 1}\n', encoding="utf-8")
    refused = run(["import", pid, str(bad), *connect], tmp_path, "sqlite://")
    assert refused.exit_code == 1
    assert "nothing was imported" in refused.stderr
    assert "row 2: data.text is missing" in refused.stderr and "row 3:" in refused.stderr
    assert tenant.owner.get(f"/projects/{pid}/stats").json()["tasks_total"] == 3

    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"task": "c", "annotator": "vendor-1", "answer": {"label": "negative"}}\n', encoding="utf-8")
    imported = run(["import-annotations", pid, str(answers), *connect], tmp_path, "sqlite://")
    assert imported.exit_code == 0, imported.output
    assert imported.output.strip().splitlines()[-1] == "created 1"
    again = run(["import-annotations", pid, str(answers), *connect], tmp_path, "sqlite://")
    assert again.exit_code == 1 and "row 1: annotator 'vendor-1' already answered task 'c'" in again.stderr

    worker = tenant.annotators[0]
    taken = worker.post(f"/projects/{pid}/assignments").json()
    assert worker.post(f"/assignments/{taken['id']}/submit", json={"answer": {"label": "mixed"}}).status_code == 201

    out = tmp_path / "out.jsonl"
    exported = run(["export", pid, "-o", str(out), *connect], tmp_path, "sqlite://")
    assert exported.exit_code == 0, exported.output
    assert exported.output.strip().splitlines()[-1] == f"wrote {out}"
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["unique_id"] for r in records] == ["a", "b", "c"]
    assert records[0]["data"]["text"] == "مرحبا" and records[0]["response"] == {"label": "mixed"}

    sheet = tmp_path / "out.csv"
    assert run(["export", pid, "--format", "csv", "-o", str(sheet), *connect], tmp_path, "sqlite://").exit_code == 0
    rows = list(csv.DictReader(io.StringIO(sheet.read_text(encoding="utf-8"))))
    assert [json.loads(r["data"])["text"] for r in rows] == ["مرحبا", "=SUM(1)", "c"]

    denied = run(["export", pid, "-o", str(tmp_path / "no.jsonl"), "--url", server.url,
                  "--token", _token(tenant.annotators[0])], tmp_path, "sqlite://")
    assert denied.exit_code == 1 and not (tmp_path / "no.jsonl").exists()
    unknown = run(["export", "987654", "-o", str(tmp_path / "no.jsonl"), *connect], tmp_path, "sqlite://")
    assert unknown.exit_code == 1 and "project not found" in unknown.output


def test_a_server_that_is_down_or_a_url_without_scheme_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "tasks.jsonl"
    source.write_text('{"data": {"text": "x"}}\n', encoding="utf-8")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = run(["import", "1", str(source), "--url", f"http://127.0.0.1:{port}", "--token", "t"], tmp_path,
               "sqlite://")
    assert down.exit_code == 1 and "Traceback" not in down.output
    # The progress bar's label, then one line that says what to check.
    assert down.stderr.splitlines()[-1].startswith("error: no answer from the server")
    assert sum(line.startswith("error") for line in down.stderr.splitlines()) == 1
    bare = run(["import", "1", str(source), "--url", "127.0.0.1:8000", "--token", "t"], tmp_path, "sqlite://")
    assert bare.exit_code == 2 and "http:// or https://" in bare.stderr and "Traceback" not in bare.output
    with pytest.raises(Exception, match="no answer|Connection refused|connect"):
        run(["--debug", "import", "1", str(source), "--url", f"http://127.0.0.1:{port}", "--token", "t"],
            tmp_path, "sqlite://")


def test_processes_starting_together_settle_on_one_secret_key(tmp_path: Path) -> None:
    """The first start of several servers at once: each reads the key one of them wrote,
    never a file another is still writing (that was "holds a secret key shorter than 32")."""
    script = ("import sys; from qistas.config import get_settings; "
              "sys.stdout.write(get_settings().secret_key)")
    for round_ in range(6):
        home = tmp_path / f"home{round_}"
        env = {**os.environ, "QISTAS_HOME": str(home)}
        env.pop("QISTAS_SECRET_KEY", None)
        started = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(6)]
        outcomes = [process.communicate(timeout=60) for process in started]
        assert [err for _out, err in outcomes if err] == []
        keys = {out for out, _err in outcomes}
        assert keys == {(home / "secret_key").read_text()} and len(keys.pop()) >= 32
        assert sorted(p.name for p in home.iterdir()) == ["secret_key"]
