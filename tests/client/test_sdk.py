"""The SDK against a real server over HTTP: resources, retries, exports, webhooks, errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from qistas.client import (
    Client,
    ExportJob,
    Invalid,
    NotFound,
    Result,
    ServerError,
    TransportError,
    verify_signature,
)
from qistas.config import Settings
from tests.conftest import LiveServer
from tests.factories import CLASSIFICATION, Tenant, label_everything
from tests.receiver import receiver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private": True, "worker_poll_seconds": 0.05,
                                        "cursor_settle_seconds": 0})


def token_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].split()[1]


@pytest.fixture
def sdk(server: LiveServer, tenant: Tenant) -> Iterator[Client]:
    with Client(server.url, token_of(tenant.owner), backoff=0.01) as client:
        yield client


class Flaky(httpx.HTTPTransport):
    """A network that fails: the first POSTs reach the server but their answers are lost,
    then one gets a 503 from a proxy, then everything works."""

    def __init__(self) -> None:
        super().__init__()
        self.plan = ["lost", "503"]
        self.lock = threading.Lock()
        self.posts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            step = self.plan.pop(0) if request.method == "POST" and self.plan else None
            self.posts += request.method == "POST"
        if step == "503":
            return httpx.Response(503, text="upstream unavailable")
        response = super().handle_request(request)
        if step == "lost":
            response.read()
            raise httpx.ReadError("connection reset", request=request)
        return response


def test_projects_tasks_and_results(sdk: Client, tenant: Tenant) -> None:
    project = sdk.projects.create(name="sdk", task=CLASSIFICATION)
    assert project.name == "sdk" and [p.id for p in sdk.projects.list()] == [project.id]
    batch = project.create_batch("first")
    seen: list[int] = []
    added = project.tasks.add(({"data": {"text": f"t{i}"}, "unique_id": f"u{i}"} for i in range(5)),
                              batch="first", chunk_size=2, on_progress=seen.append)
    assert (added.created, added.duplicates, seen) == (5, 0, [2, 2, 1])
    again = project.tasks.add([{"data": {"text": "t0"}, "unique_id": "u0"}], batch="first")
    assert (again.created, again.duplicates) == (0, 1)
    assert project.finalize_batch(batch.id).status == "in_progress"
    label_everything(tenant, project.id, {"label": "positive"})

    stream = project.results(since="0.0", page_size=2)
    results = list(stream)
    assert all(isinstance(r, Result) for r in results)
    assert sorted(r.unique_id or "" for r in results) == [f"u{i}" for i in range(5)]
    assert list(project.results(since=stream.cursor)) == []
    assert len(list(project.results(since=datetime(2000, 1, 1, tzinfo=UTC)))) == 5
    assert list(project.results(since=datetime.now(UTC) + timedelta(hours=1))) == []
    assert len(list(project.results())) == 5
    assert project.stats()["tasks"]["completed"] == 5
    assert project.batches()[0].status == "completed"


def test_errors_mirror_the_server(sdk: Client, tenant: Tenant, rival: Tenant, server: LiveServer) -> None:
    theirs = rival.project()["id"]
    with pytest.raises(NotFound) as missing:
        sdk.projects.get(theirs)
    assert missing.value.status == 404 and missing.value.code == "not_found"
    project = sdk.projects.create(name="p", task=CLASSIFICATION)
    with pytest.raises(Invalid) as invalid:
        project.tasks.add([{"data": {"text": "ok"}}, {"data": {}}])
    assert invalid.value.details["rows"][0]["row"] == 2
    with pytest.raises(Invalid):
        sdk.webhooks.create(project.id, "http://10.0.0.1/x", ["no.such.event"])
    with Client("http://127.0.0.1:9", "t", retries=1, backoff=0.01) as dead, pytest.raises(TransportError):
        dead.projects.list()


def test_imports_retry_without_duplicates(server: LiveServer, tenant: Tenant) -> None:
    flaky = Flaky()
    owner_project = tenant.project()
    with Client(server.url, token_of(tenant.owner), transport=flaky, backoff=0.01) as client:
        project = client.projects.get(owner_project["id"])
        added = project.tasks.add([{"data": {"text": f"t{i}"}, "unique_id": f"u{i}"} for i in range(3)])
    # The first attempt was stored although its answer was lost: the retry reports duplicates.
    assert flaky.posts == 3 and (added.created, added.duplicates) == (0, 3)
    assert len(list(tenant.owner.get(f"/projects/{owner_project['id']}/tasks").json()["items"])) == 3

    # Without unique_ids a chunk is not retried: a lost answer is the caller's to resolve.
    flaky.plan = ["503"]
    with Client(server.url, token_of(tenant.owner), transport=flaky, backoff=0.01) as client, \
            pytest.raises(ServerError):
        client.projects.get(owner_project["id"]).tasks.add([{"data": {"text": "anonymous"}}])


def test_exports_streamed_and_as_jobs(sdk: Client, tenant: Tenant, tmp_path: Path) -> None:
    project = sdk.projects.create(name="p", task=CLASSIFICATION)
    project.tasks.add([{"data": {"text": f"t{i}"}, "unique_id": f"u{i}"} for i in range(4)])
    label_everything(tenant, project.id, {"label": "mixed"})
    info = project.export(format="jsonl", path=tmp_path / "out.jsonl", completed=True)
    assert info.total == 4 and info.cursor
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 4
    assert not list(tmp_path.glob("*.partial"))
    assert project.export(format="jsonl", path=tmp_path / "none.jsonl", since=info.cursor).total == 0

    job = project.export_job(format="parquet", min_confidence=0.5)
    assert isinstance(job, ExportJob)
    job.wait(poll=0.05, timeout=20)
    assert job.status == "done" and job.progress == 1.0
    job.download(tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 4
    assert [j.id for j in sdk.exports.list(project.id)] == [job.id]

    datasets = pytest.importorskip("datasets")
    project.export(format="hf", path=tmp_path / "hf")
    assert datasets.load_from_disk(str(tmp_path / "hf")).num_rows == 4
    hf_job = project.export_job(format="hf").wait(poll=0.05, timeout=20)
    hf_job.download(tmp_path / "hf-job")
    assert sorted(datasets.load_from_disk(str(tmp_path / "hf-job"))["unique_id"]) == [f"u{i}" for i in range(4)]


def test_webhooks_from_the_sdk(sdk: Client, tenant: Tenant) -> None:
    project = sdk.projects.create(name="p", task=CLASSIFICATION)
    with receiver() as rx:
        hook = sdk.webhooks.create(project.id, rx.url + "/hook", ["task.completed"])
        assert hook.secret and [w.id for w in sdk.webhooks.list(project.id)] == [hook.id]
        project.tasks.add([{"data": {"text": "x"}, "unique_id": "x"}])
        label_everything(tenant, project.id, {"label": "positive"})
        rx.wait_for(lambda r: len(r.at("/hook")) == 1)
        got = rx.at("/hook")[0]
        assert verify_signature(hook.secret, got.body, got.headers["qistas-signature"])
        assert not verify_signature("whsec_wrong", got.body, got.headers["qistas-signature"])
        assert json.loads(got.body)["task"]["unique_id"] == "x"
        rx.wait_for(lambda r: list(sdk.webhooks.deliveries(project.id, hook.id))[0].status == "delivered")
        (delivery,) = sdk.webhooks.deliveries(project.id, hook.id)
        sdk.webhooks.resend(project.id, delivery.id)
        rx.wait_for(lambda r: len(r.at("/hook")) == 2)
        assert rx.at("/hook")[1].body == got.body
        sdk.webhooks.delete(project.id, hook.id)
        assert sdk.webhooks.list(project.id) == []
        assert sdk.webhooks.callback_secret(project.id).startswith("cbsec_")


def test_existing_annotations_from_the_sdk(sdk: Client, tenant: Tenant) -> None:
    project = sdk.projects.create(name="moved", task=CLASSIFICATION, redundancy={"min": 2, "max": 2})
    project.tasks.add([{"data": {"text": f"t{i}"}, "unique_id": f"u{i}"} for i in range(3)])
    seen: list[int] = []
    rows = ({"task": f"u{i}", "annotator": f"vendor-{w}", "answer": {"label": "negative"}}
            for i in range(3) for w in range(2))
    assert project.tasks.add_annotations(rows, chunk_size=4, on_progress=seen.append) == 6
    assert seen == [4, 2]
    assert sorted(r.unique_id or "" for r in project.results()) == ["u0", "u1", "u2"]
    with pytest.raises(Invalid) as refused:
        project.tasks.add_annotations([{"task": "u0", "annotator": "vendor-0", "answer": {"label": "negative"}}])
    assert "already answered" in str(refused.value.details)
