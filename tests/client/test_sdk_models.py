"""Models in the loop from the SDK, against a real server and the loopback model server
(tests/model_server.py): endpoints registered, listed and deleted, pre-label jobs run in both
modes and followed to their end, and another organization's endpoints and jobs not found."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from qistas.cli import main
from qistas.client import Client, Forbidden, Invalid, ModelEndpoint, ModelUsage, NotFound, PrelabelFailure, PrelabelJob
from qistas.config import Settings
from tests.client.test_sdk import token_of
from tests.conftest import LiveServer
from tests.factories import Tenant
from tests.model_server import ModelServer, model_server

KEY = "sk-sdk-secret-77a0"
SPEC = {"type": "classification", "labels": ["positive", "negative", "mixed"], "text_field": "text"}
TEMPLATE = {"system": "Answer with JSON: {{\"label\": ...}}.", "user": "Text: {text}"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The loopback model server is a private address: let the whole instance reach it.
    return settings.model_copy(update={"webhook_allow_private": True, "worker_poll_seconds": 0.05,
                                        "model_retry_base_seconds": 0.05, "model_max_attempts": 2})


@pytest.fixture
def llm() -> Iterator[ModelServer]:
    with model_server() as found:
        yield found


@pytest.fixture
def owner(server: LiveServer, tenant: Tenant) -> Iterator[Client]:
    with Client(server.url, token_of(tenant.owner), backoff=0.01) as client:
        yield client


def test_endpoints_and_jobs_in_both_modes(owner: Client, server: LiveServer, tenant: Tenant, rival: Tenant,
                                          llm: ModelServer) -> None:
    endpoint = owner.model_endpoints.create(name="local", base_url=llm.base_url, model="qwen-test", api_key=KEY,
                                            max_concurrency=2, timeout_seconds=1.0, price_input_per_1k=0.5,
                                            price_output_per_1k=1.0)
    assert isinstance(endpoint, ModelEndpoint)
    assert (endpoint.name, endpoint.model, endpoint.has_api_key, endpoint.max_concurrency) == \
        ("local", "qwen-test", True, 2)
    assert KEY not in repr(endpoint)
    assert [e.id for e in owner.model_endpoints.list()] == [endpoint.id]
    assert owner.model_endpoints.get(endpoint.id).base_url == llm.base_url

    # Pre-labels: each valid answer a prediction, each failure with its reason.
    project = owner.projects.create(name="sdk models", task=SPEC)
    project.tasks.add([{"data": {"text": t}} for t in ["ok positive", "ok negative", "html positive"]])
    job = project.prelabel(endpoint=endpoint.id, template=TEMPLATE)
    assert isinstance(job, PrelabelJob) and job.as_ == "predictions"
    seen: list[str] = []
    job.wait(poll=0.05, timeout=30, on_progress=lambda j: seen.append(j.status))
    assert (job.status, job.done, job.failed, job.skipped, job.tasks_total) == ("done", 2, 1, 0, 3)
    assert job.model == "local/qwen-test"
    (failure,) = job.failures
    assert isinstance(failure, PrelabelFailure) and "text/html" in failure.reason
    tasks = {t["data"]["text"]: t for t in project.tasks.list()}
    assert tasks["ok positive"]["id"] != failure.task_id
    predictions = project.tasks.get(tasks["ok negative"]["id"])["predictions"]
    assert predictions == [{"model": "local/qwen-test", "answer": {"label": "negative"}, "score": 0.9}]
    assert all(a.headers.get("authorization") == f"Bearer {KEY}" for a in llm.received)

    # As an annotator: the model's own answers, on the pending tasks.
    second = project.prelabel(endpoint=endpoint.id, template=TEMPLATE, as_="annotations").wait(poll=0.05, timeout=30)
    assert (second.as_, second.done, second.failed) == ("annotations", 2, 1)
    shown = project.tasks.get(tasks["ok positive"]["id"])
    assert [(a["source"], a["answer"]) for a in shown["annotations"]] == [("model", {"label": "positive"})]

    # The project's list and its accounting over both jobs.
    jobs = project.prelabel_jobs()
    assert [j.id for j in jobs] == [second.id, job.id]
    usage = project.model_usage()
    assert isinstance(usage, ModelUsage)
    assert (usage.jobs, usage.done, usage.failed) == (2, 4, 2)
    # 10 prompt and 5 completion tokens per answer; the HTML pages said none.
    assert (usage.input_tokens, usage.output_tokens) == (40, 20)
    assert usage.cost == pytest.approx(40 * 0.5 / 1000 + 20 * 1.0 / 1000)
    # A job refreshed by hand reads the same as it was waited for.
    assert PrelabelJob(owner, {"id": job.id}).refresh().done == 2
    # A standing job: wait() returns once its pass is over and it waits for new tasks; stop() ends it.
    other = owner.projects.create(name="sdk standing", task=SPEC)
    other.tasks.add([{"data": {"text": "ok positive"}}])
    standing = other.prelabel(endpoint=endpoint.id, template=TEMPLATE, standing=True).wait(poll=0.05, timeout=30)
    assert (standing.standing, standing.status) == (True, "waiting")
    assert standing.done == 1 and standing.tasks_total is None
    assert standing.stop().status == "stopped" and standing.refresh().status == "stopped"

    with pytest.raises(Invalid):  # a template naming a field the spec does not have
        project.prelabel(endpoint=endpoint.id, template={"user": "{body}"})
    with pytest.raises(ValueError):
        project.prelabel(endpoint=endpoint.id, template=TEMPLATE, as_="labels")

    # Another organization: neither the endpoint nor the job nor the project exists for it.
    with Client(server.url, token_of(rival.owner), backoff=0.01) as other:
        assert other.model_endpoints.list() == []
        with pytest.raises(NotFound):
            other.model_endpoints.get(endpoint.id)
        with pytest.raises(NotFound):
            other.model_endpoints.delete(endpoint.id)
        with pytest.raises(NotFound):
            PrelabelJob(other, {"id": job.id}).refresh()
        theirs = other.projects.create(name="rival models", task=SPEC)
        with pytest.raises(NotFound):  # a project may use only its own organization's endpoints
            theirs.prelabel(endpoint=endpoint.id, template=TEMPLATE)
    # A member may run jobs but not see or change the endpoints.
    with Client(server.url, token_of(tenant.member), backoff=0.01) as member:
        with pytest.raises(Forbidden):
            member.model_endpoints.list()
        assert member.projects.get(project.id).prelabel_jobs()[0].id == second.id

    owner.model_endpoints.delete(endpoint.id)
    assert owner.model_endpoints.list() == []
    with pytest.raises(NotFound):
        owner.model_endpoints.get(endpoint.id)
    assert project.prelabel_jobs()[0].status == "done"  # its jobs stay readable


def test_the_cli_runs_a_job(owner: Client, server: LiveServer, tenant: Tenant, llm: ModelServer,
                            tmp_path: Path) -> None:
    endpoint = owner.model_endpoints.create(name="cli", base_url=llm.base_url, model="m", timeout_seconds=1.0)
    project = owner.projects.create(name="cli models", task=SPEC)
    project.tasks.add([{"data": {"text": t}} for t in ["ok positive", "outside negative", "ok mixed"]])
    template = tmp_path / "template.json"
    template.write_text(json.dumps(TEMPLATE), encoding="utf-8")
    token = token_of(tenant.owner)
    args = ["prelabel", str(project.id), "--endpoint", str(endpoint.id), "--template", str(template),
            "--url", server.url, "--token", token]
    result = CliRunner().invoke(main, [*args, "--as", "annotations", "--wait"])
    assert result.exit_code == 0, result.output
    assert "done 2, failed 1, skipped 0" in result.output
    assert "the answer was refused" in result.output  # the label outside the set, with its task
    (job,) = project.prelabel_jobs()
    assert job.as_ == "annotations" and f"pre-label job {job.id} queued" in result.output
    # Without --wait: queued, and its id printed; a wrong token is one line and status 1.
    queued = CliRunner().invoke(main, args)
    assert queued.exit_code == 0 and "queued" in queued.output and "done" not in queued.output
    refused = CliRunner().invoke(main, [*args[:-1], "wrong"])
    assert refused.exit_code == 1
    assert len(project.prelabel_jobs()) == 2
