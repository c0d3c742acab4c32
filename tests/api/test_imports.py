"""Importing tasks: every format, idempotency, and all-or-nothing on any bad row."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text

from qistas.db.dialect import ANALYZE_AFTER_ROWS
from qistas.db.engine import Database
from tests.api.conftest import World
from tests.api.helpers import all_tasks, count_tasks, error_of, field_of
from tests.factories import CLASSIFICATION, Tenant

TEXT_SPEC = {"type": "text"}
ARABIC = "مرحبا بالعالم 👋🏽"


def _post(tenant: Tenant, pid: int, body: bytes | str, content_type: str, **params: Any) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return tenant.owner.post(f"/projects/{pid}/tasks", content=content, params=params,
                             headers={"content-type": content_type})


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _rows(response: httpx.Response) -> list[dict[str, Any]]:
    error = error_of(response, 422)
    return error["details"]["rows"]  # type: ignore[no-any-return]


@pytest.fixture
def project(world: World) -> int:
    return int(world.tenant.project()["id"])


def _texts(world: World, pid: int) -> list[str]:
    return [t["data"]["text"] for t in all_tasks(world.tenant.owner, pid)]


def test_json_list_body(world: World, project: int) -> None:
    rows = [{"data": {"text": ARABIC}, "unique_id": "a", "metadata": {"source": "web"}},
            {"data": {"text": "two", "extra": [1, 2]}, "gold": {"label": "mixed"}}]
    assert _created(world.tenant.owner.post(f"/projects/{project}/tasks", json=rows)) == \
        {"created": 2, "duplicates": 0}
    tasks = all_tasks(world.tenant.owner, project)
    assert [(t["data"], t["unique_id"], t["metadata"], t["gold"]) for t in tasks] == [
        ({"text": ARABIC}, "a", {"source": "web"}, None),
        ({"text": "two", "extra": [1, 2]}, None, None, {"label": "mixed"}),
    ]


@pytest.mark.parametrize("media", ["application/x-ndjson", "application/jsonl", "application/jsonlines"])
def test_jsonl_body(world: World, project: int, media: str) -> None:
    body = '{"data": {"text": "one"}}\r\n\n   \n{"data": {"text": "' + ARABIC + '"}, "unique_id": 7}'
    assert _created(_post(world.tenant, project, body, media)) == {"created": 2, "duplicates": 0}
    tasks = all_tasks(world.tenant.owner, project)
    assert [t["data"]["text"] for t in tasks] == ["one", ARABIC]
    assert tasks[1]["unique_id"] == "7"


def test_csv_body(world: World, project: int) -> None:
    body = (
        "text,unique_id,gold,metadata,lang\r\n"
        f'"{ARABIC}",c1,positive,"{{""k"": 1}}",ar\r\n'
        '"line one\r\nline two, with a comma",c2,"{""label"": ""negative""}",,en\r\n'
        'plain,,,,\r\n'
    )
    assert _created(_post(world.tenant, project, body, "text/csv; charset=utf-8")) == \
        {"created": 3, "duplicates": 0}
    tasks = all_tasks(world.tenant.owner, project)
    assert [(t["data"], t["unique_id"], t["gold"], t["metadata"]) for t in tasks] == [
        ({"text": ARABIC, "lang": "ar"}, "c1", {"label": "positive"}, {"k": 1}),
        ({"text": "line one\r\nline two, with a comma", "lang": "en"}, "c2", {"label": "negative"}, None),
        ({"text": "plain", "lang": ""}, None, None, None),
    ]


def test_csv_cells_longer_than_the_csv_modules_default_limit(world: World, project: int) -> None:
    long_text = "ب" * 200_000
    body = f'text\n"{long_text}"\n'
    assert _created(_post(world.tenant, project, body, "text/csv"))["created"] == 1
    assert _texts(world, project) == [long_text]


def test_csv_row_with_too_many_cells_and_bad_metadata(world: World, project: int) -> None:
    body = "text,metadata\nok,\na,{},surplus\nb,not json\n"
    rows = _rows(_post(world.tenant, project, body, "text/csv"))
    assert [r["row"] for r in rows] == [2, 3]
    assert "more cells" in rows[0]["message"] and "metadata" in rows[1]["message"]
    assert count_tasks(world.database, project) == 0


def test_csv_row_with_an_empty_required_cell_is_refused(world: World, project: int) -> None:
    body = "unique_id,text,shop\ncsvb-1,fine,shop\ncsvb-2,,shop\n"
    rows = _rows(_post(world.tenant, project, body, "text/csv"))
    assert rows == [{"row": 2, "message": "data.text is empty"}]
    assert count_tasks(world.database, project) == 0


def test_csv_header_naming_a_column_twice_is_refused(world: World, project: int) -> None:
    response = _post(world.tenant, project, "text,note,text\nfirst,n,second\n", "text/csv")
    error = error_of(response, 422)
    assert "'text' twice" in error["message"] and error["details"] == {"field": "file"}
    assert count_tasks(world.database, project) == 0


@pytest.mark.parametrize(("name", "content", "form"), [
    ("tasks.jsonl", b'{"data": {"text": "j1"}}\n{"data": {"text": "j2"}}\n', None),
    ("tasks.ndjson", b'{"data": {"text": "j1"}}\n{"data": {"text": "j2"}}\n', None),
    ("tasks.csv", b"text\nj1\nj2\n", None),
    ("tasks.json", b'[{"data": {"text": "j1"}}, {"data": {"text": "j2"}}]', None),
    ("TASKS.JSON", b'[{"data": {"text": "j1"}}, {"data": {"text": "j2"}}]', None),
    ("export.txt", b"text\nj1\nj2\n", {"format": "csv"}),
])
def test_multipart_upload(world: World, project: int, name: str, content: bytes, form: dict[str, str] | None) -> None:
    response = world.tenant.owner.post(f"/projects/{project}/tasks", files={"file": (name, content)}, data=form)
    assert _created(response) == {"created": 2, "duplicates": 0}
    assert _texts(world, project) == ["j1", "j2"]


def test_multipart_upload_needs_a_file_and_a_known_format(world: World, project: int) -> None:
    owner = world.tenant.owner
    unknown = owner.post(f"/projects/{project}/tasks", files={"file": ("tasks.txt", b"text\na\n")})
    assert field_of(unknown) == "format"
    wrong_field = owner.post(f"/projects/{project}/tasks", files={"upload": ("tasks.csv", b"text\na\n")})
    assert field_of(wrong_field) == "file"
    bad_format = _post(world.tenant, project, b"text\na\n", "text/csv", format="xml")
    assert field_of(bad_format) == "format"
    assert count_tasks(world.database, project) == 0


@pytest.mark.parametrize(("media", "body"), [
    ("application/json", '[{"data": {"text": "bom"}}]'),
    ("application/x-ndjson", '{"data": {"text": "bom"}}\n'),
    ("text/csv", "text\nbom\n"),
])
def test_utf8_with_bom(world: World, project: int, media: str, body: str) -> None:
    assert _created(_post(world.tenant, project, b"\xef\xbb\xbf" + body.encode(), media))["created"] == 1
    tasks = all_tasks(world.tenant.owner, project)
    assert tasks[0]["data"] == {"text": "bom"}


def test_unique_id_makes_import_idempotent(world: World, project: int) -> None:
    owner = world.tenant.owner
    first = [{"data": {"text": "a"}, "unique_id": "u1"}, {"data": {"text": "b"}, "unique_id": "u2"}]
    assert _created(owner.post(f"/projects/{project}/tasks", json=first)) == {"created": 2, "duplicates": 0}
    again = [*first, {"data": {"text": "c"}, "unique_id": "u3"}, {"data": {"text": "changed"}, "unique_id": "u1"}]
    assert _created(owner.post(f"/projects/{project}/tasks", json=again)) == {"created": 1, "duplicates": 3}
    inside = [{"data": {"text": "d"}, "unique_id": "u4"}, {"data": {"text": "d2"}, "unique_id": "u4"},
              {"data": {"text": "e"}, "unique_id": 5}, {"data": {"text": "e2"}, "unique_id": "5"},
              {"data": {"text": "no id"}}, {"data": {"text": "no id"}}]
    assert _created(owner.post(f"/projects/{project}/tasks", json=inside)) == {"created": 4, "duplicates": 2}
    assert _texts(world, project) == ["a", "b", "c", "d", "e", "no id", "no id"]
    # unique_id is per project: another project may reuse it.
    other = world.tenant.project()["id"]
    assert _created(owner.post(f"/projects/{other}/tasks", json=first))["created"] == 2


def test_any_invalid_row_rejects_the_whole_import(world: World, project: int) -> None:
    rows: list[Any] = [{"data": {"text": "ok"}} for _ in range(6)]
    rows[1] = {"data": {"body": "no text field"}}
    rows[3] = "not an object"
    rows[4] = {"data": {"text": "x"}, "colour": "red"}
    rows[5] = {"data": {"text": "x"}, "gold": {"label": "neutral"}}
    response = world.tenant.owner.post(f"/projects/{project}/tasks", json=rows)
    details = error_of(response, 422)["details"]
    assert [r["row"] for r in details["rows"]] == [2, 4, 5, 6]
    assert all(set(r) == {"row", "message"} for r in details["rows"])
    assert "data.text" in details["rows"][0]["message"]
    assert "colour" in details["rows"][2]["message"]
    assert details["rows"][3]["message"].startswith("gold.label: unknown label")
    assert (details["invalid"], details["total"]) == (4, 6)
    assert count_tasks(world.database, project) == 0


def test_a_bad_row_after_the_first_inserted_chunk_still_writes_nothing(world: World, project: int) -> None:
    lines = [json.dumps({"data": {"text": f"t{i}"}, "unique_id": f"u{i}"}) for i in range(2500)]
    lines[2400] = '{"data": {"text": "broken"'
    response = _post(world.tenant, project, "\n".join(lines), "application/x-ndjson")
    assert [r["row"] for r in _rows(response)] == [2401]
    assert count_tasks(world.database, project) == 0
    lines[2400] = json.dumps({"data": {"text": "fixed"}})
    assert _created(_post(world.tenant, project, "\n".join(lines), "application/x-ndjson"))["created"] == 2500


def test_listed_row_errors_are_capped_but_all_counted(tight: World) -> None:
    pid = tight.tenant.project()["id"]
    rows = [{"data": {}} for _ in range(7)]
    details = error_of(tight.tenant.owner.post(f"/projects/{pid}/tasks", json=rows), 422)["details"]
    assert [r["row"] for r in details["rows"]] == [1, 2, 3]
    assert details["invalid"] == 7


@pytest.mark.parametrize(("body", "media"), [
    (b'[{"data": {"text": "caf\xe9"}}]', "application/json"),
    (b'{"data": {"text": "\xff\xfe"}}\n', "application/x-ndjson"),
    (b"text\n\xc3\x28\n", "text/csv"),
])
def test_invalid_utf8_is_refused(world: World, project: int, body: bytes, media: str) -> None:
    response = _post(world.tenant, project, body, media)
    error = error_of(response, 422)
    assert "UTF-8" in error["message"]
    assert count_tasks(world.database, project) == 0


@pytest.mark.parametrize("row", [
    '{"data": {"text": "nul \\u0000 inside"}}',
    '{"data": {"text": "ok", "k\\u0000": 1}}',
    '{"data": {"text": "ok"}, "unique_id": "id\\u0000"}',
    '{"data": {"text": "ok"}, "metadata": {"note": "\\u0000"}}',
    '{"data": {"text": "lone \\ud800 surrogate"}}',
    '{"data": {"text": "ok", "nested": [{"deep": "\\udfff"}]}}',
    '{"data": {"text": "ok"}, "metadata": {"\\ud83d": 1}}',
    '{"data": {"text": "ok"}, "unique_id": "\\udc00"}',
])
def test_text_no_database_can_store_is_refused(world: World, project: int, row: str) -> None:
    for media, body in (("application/x-ndjson", row), ("application/json", f"[{row}]")):
        rows = _rows(_post(world.tenant, project, body, media))
        assert [r["row"] for r in rows] == [1]
        assert "NUL" in rows[0]["message"] or "surrogate" in rows[0]["message"]
    assert count_tasks(world.database, project) == 0


@pytest.mark.parametrize("gold", ['{"text": "nul \\u0000"}', '{"text": "\\ud800"}'])
def test_gold_no_database_can_store_is_refused(world: World, gold: str) -> None:
    pid = world.tenant.project(task=TEXT_SPEC)["id"]
    body = '[{"data": {"prompt": "p"}, "gold": ' + gold + "}]"
    rows = _rows(_post(world.tenant, pid, body, "application/json"))
    assert [r["row"] for r in rows] == [1] and "gold" in rows[0]["message"]
    csv_body = 'prompt,gold\np,"' + gold.replace('"', '""') + '"\n'
    rows = _rows(_post(world.tenant, pid, csv_body, "text/csv"))
    assert [r["row"] for r in rows] == [1] and "gold" in rows[0]["message"]
    assert count_tasks(world.database, pid) == 0
    assert world.tenant.owner.get(f"/projects/{pid}/stats").status_code == 200


def test_nul_bytes_in_csv_are_refused(world: World, project: int) -> None:
    rows = _rows(_post(world.tenant, project, b"text\nfine\nbad\x00cell\n", "text/csv"))
    assert [r["row"] for r in rows] == [2]
    assert count_tasks(world.database, project) == 0


@pytest.mark.parametrize(("body", "media"), [
    ("this is not json", "application/json"),
    ('{"data": {"text": "an object, not a list"}}', "application/json"),
    ('[{"data": {"text": "a"}} {"data": {"text": "b"}}]', "application/json"),
    ('[{"data": {"text": "a"}},', "application/json"),
    ("", "application/json"),
    ("[]", "application/json"),
    ("", "application/x-ndjson"),
    ("\n\n", "application/x-ndjson"),
    ("", "text/csv"),
    ("text\n", "text/csv"),
    ('{"data": {"text": "a"}}\nnot json\n', "application/x-ndjson"),
])
def test_malformed_bodies_are_422(world: World, project: int, body: str, media: str) -> None:
    error_of(_post(world.tenant, project, body, media), 422)
    assert count_tasks(world.database, project) == 0


@pytest.mark.parametrize("media", ["text/plain", "application/xml", ""])
def test_wrong_content_type_is_415(world: World, project: int, media: str) -> None:
    response = world.tenant.owner.post(f"/projects/{project}/tasks", content=b'[{"data": {"text": "a"}}]',
                                       headers={"content-type": media})
    assert error_of(response, 415)["code"] == "unsupported_media_type"


def test_upload_over_the_limit_is_413(tight: World) -> None:
    pid = tight.tenant.project()["id"]
    content = b"text\n" + b"".join(b"row %d\n" % i for i in range(1000))
    response = tight.tenant.owner.post(f"/projects/{pid}/tasks", files={"file": ("big.csv", content)})
    error_of(response, 413)
    assert count_tasks(tight.database, pid) == 0
    small = tight.tenant.owner.post(f"/projects/{pid}/tasks", files={"file": ("small.csv", b"text\na\n")})
    assert _created(small)["created"] == 1


def test_batches_named_in_rows(world: World, project: int) -> None:
    owner = world.tenant.owner
    for name in ("open", "done", "dropped"):
        assert owner.post(f"/projects/{project}/batches", json={"name": name}).status_code == 201
    batches = {b["name"]: b["id"] for b in owner.get(f"/projects/{project}/batches").json()["items"]}
    assert _created(owner.post(f"/projects/{project}/tasks", json=[{"data": {"text": "x"}, "batch": "done"}]))
    assert owner.post(f"/batches/{batches['dropped']}/cancel").status_code == 200
    # Complete "done": finalize, then annotate its only task.
    assert owner.post(f"/batches/{batches['done']}/finalize").status_code == 200
    worker = world.tenant.annotators[0]
    taken = worker.post(f"/projects/{project}/assignments").json()
    assert worker.post(f"/assignments/{taken['id']}/submit", json={"answer": {"label": "mixed"}}).status_code == 201
    assert owner.get(f"/batches/{batches['done']}").json()["status"] == "completed"

    rows = [{"data": {"text": "a"}, "batch": "open"}, {"data": {"text": "b"}, "batch": "nope"},
            {"data": {"text": "c"}, "batch": "done"}, {"data": {"text": "d"}, "batch": "dropped"}]
    problems = _rows(owner.post(f"/projects/{project}/tasks", json=rows))
    assert [(r["row"], r["message"]) for r in problems] == [
        (2, "unknown batch 'nope'"), (3, "batch 'done' is completed"), (4, "batch 'dropped' is canceled"),
    ]
    assert count_tasks(world.database, project) == 1
    assert _created(owner.post(f"/projects/{project}/tasks", json=rows[:1]))["created"] == 1
    assert owner.get(f"/batches/{batches['open']}").json()["counts"] == {"pending": 1}


def test_another_projects_batch_is_unknown(world: World, project: int) -> None:
    other = world.tenant.project()["id"]
    assert world.tenant.owner.post(f"/projects/{other}/batches", json={"name": "theirs"}).status_code == 201
    problems = _rows(world.tenant.owner.post(f"/projects/{project}/tasks",
                                             json=[{"data": {"text": "a"}, "batch": "theirs"}]))
    assert problems == [{"row": 1, "message": "unknown batch 'theirs'"}]


def test_a_client_that_disconnects_mid_import_leaves_nothing(world: World, project: int,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    lines = b"".join(b'{"data": {"text": "row %d"}}\n' % i for i in range(2000))
    half = lines[: len(lines) // 2]
    half = half[: half.rfind(b"\n") + 1]  # only whole rows: a server that imported what came would write
    address = urlsplit(world.url)
    token = world.tenant.owner.headers["authorization"]
    head = (
        f"POST /api/v1/projects/{project}/tasks HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: {token}\r\nContent-Type: application/x-ndjson\r\n"
        f"Content-Length: {len(lines)}\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port), timeout=5) as raw:
        raw.sendall(head + half)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        assert count_tasks(world.database, project) == 0
        time.sleep(0.05)
    # The server still serves, and the same rows import normally.
    assert _created(_post(world.tenant, project, lines, "application/x-ndjson"))["created"] == 2000
    # A client going away is not a server error: nothing is logged as one.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_json_array_over_many_read_chunks(world: World, project: int) -> None:
    rows = [{"data": {"text": ARABIC * (1 + i % 7), "n": 10 ** (i % 12)}} for i in range(3000)]
    body = json.dumps(rows, ensure_ascii=False, indent=1).encode()
    assert len(body) > 4 * 65536
    assert _created(_post(world.tenant, project, body, "application/json"))["created"] == 3000
    stored = all_tasks(world.tenant.owner, project, limit=1000)
    assert [t["data"] for t in stored] == [r["data"] for r in rows]


def test_upload_streams_from_a_file_object(world: World, project: int) -> None:
    """A file handle sent as multipart (how the SDK uploads) is read whole."""
    handle = io.BytesIO(b"".join(b"text\n" if i == 0 else b"r%d\n" % i for i in range(5001)))
    response = world.tenant.owner.post(f"/projects/{project}/tasks", files={"file": ("big.csv", handle)})
    assert _created(response)["created"] == 5000


def test_nesting_too_deep_for_the_json_module_is_a_row_error(world: World, project: int) -> None:
    deep = '{"data": {"text": "x", "d": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    rows = _rows(_post(world.tenant, project, '{"data": {"text": "ok"}}\n' + deep, "application/x-ndjson"))
    assert rows == [{"row": 2, "message": "nested too deeply to read"}]
    error = error_of(_post(world.tenant, project, f'[{{"data": {{"text": "ok"}}}}, {deep}]', "application/json"),
                     422)
    assert error["message"] == "row 2: nested too deeply to read"
    # Deep but readable nesting is refused by the storage check, naming the field.
    nested = '{"data": {"text": "x", "d": ' + "[" * 70 + "]" * 70 + "}}"
    rows = _rows(_post(world.tenant, project, nested, "application/x-ndjson"))
    assert "nested deeper than 64 levels" in rows[0]["message"]
    assert count_tasks(world.database, project) == 0
    body = ('{"name": "deep", "task": {"type": "text"}, "gold": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    error_of(world.tenant.owner.post("/projects", content=body, headers={"content-type": "application/json"}), 400)


def test_csv_json_cells_nested_too_deep(world: World, project: int) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    rows = _rows(_post(world.tenant, project, f"text,metadata,gold\na,{deep},\nb,,{deep}\n", "text/csv"))
    assert [r["row"] for r in rows] == [1, 2]
    assert rows[0]["message"] == "metadata must be a JSON object"
    assert rows[1]["message"].startswith("gold.label: unknown label")
    assert count_tasks(world.database, project) == 0


def _manual_analyzes_of_tasks(world: World) -> int:
    with world.database.engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'tasks'")).scalar_one())


def test_a_large_import_refreshes_postgresqls_statistics_and_a_small_one_does_not(
    world: World, project: int
) -> None:
    if world.database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps no planner statistics to refresh")
    before = _manual_analyzes_of_tasks(world)
    _created(world.tenant.owner.post(f"/projects/{project}/tasks", json=[{"data": {"text": "one"}}]))
    time.sleep(1.5)  # statistics reach pg_stat_* within a second
    assert _manual_analyzes_of_tasks(world) == before
    rows = [{"data": {"text": f"row {n}"}} for n in range(ANALYZE_AFTER_ROWS)]
    _created(world.tenant.owner.post(f"/projects/{project}/tasks", json=rows))
    deadline = time.monotonic() + 10
    while _manual_analyzes_of_tasks(world) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _manual_analyzes_of_tasks(world) == before + 1


def _writes_during(tenant: Tenant, rival: Tenant, pid: int, body: bytes) -> tuple[httpx.Response, float, list[float]]:
    """Post ``body`` as an import while the rival creates projects (a write each); how long
    the import took and how long each of the rival's writes waited."""
    outcome: dict[str, Any] = {}

    def big_import() -> None:
        start = time.perf_counter()
        outcome["response"] = tenant.owner.post(f"/projects/{pid}/tasks", content=body, timeout=600,
                                                headers={"content-type": "application/x-ndjson"})
        outcome["seconds"] = time.perf_counter() - start

    importer = threading.Thread(target=big_import)
    waits = []
    importer.start()
    while importer.is_alive():
        start = time.perf_counter()
        assert rival.owner.post("/projects", json={"name": "meanwhile", "task": CLASSIFICATION}).status_code == 201
        waits.append(time.perf_counter() - start)
        time.sleep(0.02)
    importer.join()
    return outcome["response"], outcome["seconds"], waits


# SQLite has one write lock for everyone; PostgreSQL locks rows, and another tenant's writes
# never waited for an import there.
@pytest.mark.sqlite_only
def test_parsing_an_import_holds_no_write_lock(tenant: Tenant, rival: Tenant) -> None:
    """Rows are parsed and validated before any write transaction opens. A large file used to
    be parsed inside it: on SQLite every other tenant's write waited for the whole parse (a
    200 MB one-line file: 78 s, then `database is locked`)."""
    pid = tenant.project()["id"]
    body = "\n".join(json.dumps({"data": {"title": f"row {n}"}}) for n in range(150_000)).encode()
    response, seconds, waits = _writes_during(tenant, rival, pid, body)
    assert response.status_code == 422  # every row lacks data.text: nothing to write
    assert seconds > 1.0  # long enough for the waits to tell
    assert len(waits) >= 3 and max(waits) < seconds / 3, (max(waits), seconds)


@pytest.mark.sqlite_only
def test_writing_a_large_import_lets_other_tenants_write_between_its_chunks(
    tenant: Tenant, rival: Tenant, database: Database
) -> None:
    """The rows are written in short transactions; they were one, and on SQLite every other
    tenant's write waited for all of it (150,000 rows: about 10 s here)."""
    pid = tenant.project()["id"]
    body = "\n".join(json.dumps({"data": {"text": f"row {n}"}, "unique_id": f"w{n}"}) for n in range(150_000))
    response, seconds, waits = _writes_during(tenant, rival, pid, body.encode())
    assert _created(response) == {"created": 150_000, "duplicates": 0}
    assert count_tasks(database, pid) == 150_000
    assert seconds > 2.0
    assert len(waits) >= 5 and max(waits) < seconds / 4, (max(waits), seconds)
