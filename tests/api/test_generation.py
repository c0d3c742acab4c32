"""Generation batches against a real OpenAI-compatible server on loopback (tests/model_server.py)
and the server's own background worker: candidates become tasks with their provenance,
near-duplicates are dropped, failures keep their reason, accepted items export as SFT and
preference data, and nothing crosses organizations."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from qistas.db.models import GenerationBatch, Task
from tests.api.conftest import World, make_world
from tests.api.helpers import error_of, field_of
from tests.factories import label_everything
from tests.model_server import ModelServer, model_server


@pytest.fixture(scope="module")
def gen(template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with make_world(template, tmp_path_factory.mktemp("generation"), worker_poll_seconds=0.1,
                    model_retry_base_seconds=0.05, model_max_attempts=2) as found:
        yield found


@pytest.fixture(scope="module")
def llm() -> Iterator[ModelServer]:
    with model_server() as found:
        yield found


def register(world: World, llm: ModelServer, name: str, org: str = "acme", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "base_url": llm.base_url, "model": f"{name}-model", "allow_private": True, "org": org,
            "timeout_seconds": 1.0, **fields}
    answer = world.admin.post("/model-endpoints", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def wait_done(world: World, batch_id: int, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = world.tenant.owner.get(f"/generation-batches/{batch_id}").json()
        if batch["status"] in ("done", "failed"):
            return batch  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"the batch did not finish: {batch}")


def generate(world: World, project_id: int, **body: Any) -> dict[str, Any]:
    answer = world.tenant.owner.post(f"/projects/{project_id}/generate", json=body)
    assert answer.status_code == 202, answer.text
    return wait_done(world, answer.json()["id"])


def tasks_of(world: World, project_id: int) -> list[Task]:
    with world.database.reader() as session:
        return list(session.scalars(select(Task).where(Task.project_id == project_id).order_by(Task.id)))


def exported(world: World, project_id: int, fmt: str) -> list[dict[str, Any]]:
    answer = world.tenant.owner.get(f"/projects/{project_id}/export", params={"format": fmt})
    assert answer.status_code == 200, answer.text
    return [json.loads(line) for line in answer.text.splitlines()]


def test_candidates_become_tasks_people_verify_and_export_as_sft_and_preference(gen: World,
                                                                             llm: ModelServer) -> None:
    endpoint = register(gen, llm, "gulf", price_input_per_1k=1.0)
    project = gen.tenant.project({"type": "verify"})
    template = {"system": "Answer with JSON {{\"candidate\": ...}}.",
                "user": "سؤال {index} عن {topic} باللهجة {language} gen اكتب"}
    batch = generate(gen, project["id"], endpoints=[endpoint["id"]], template=template, count=6,
                     topics=["البحر", "السوق"], language="الخليجية", seed=7, temperature=0.9)
    assert batch["status"] == "done", batch
    assert (batch["generated"], batch["duplicates"], batch["failed"], batch["next_index"]) == (6, 0, 0, 6)
    assert (batch["requests"], batch["input_tokens"], batch["cost"]) == (6, 60, pytest.approx(0.06))
    assert batch["models"] == ["gulf/gulf-model"]
    tasks = tasks_of(gen, project["id"])
    assert len(tasks) == 6 and all(t.status == "pending" for t in tasks)
    first = tasks[0]
    assert first.data == {"candidate": first.data["candidate"], "prompt": "اكتب"}
    assert "باللهجة الخليجية" in first.data["candidate"]
    made = first.meta["provenance"]
    assert made["model"] == ["gulf/gulf-model"] and made["batch"] == batch["id"]
    assert made["template"] == template and made["params"]["topics"] == ["البحر", "السوق"]
    assert made["params"]["seed"] == 7 and first.unique_id == f"generated-{batch['id']}-{made['index']}"
    asked = [a for a in llm.received if a.body["model"] == "gulf-model"]
    assert sorted(a.body["seed"] for a in asked) == [7, 8, 9, 10, 11, 12]
    assert {a.body["temperature"] for a in asked} == {0.9}
    assert asked[0].body["response_format"] == {"type": "json_object"}
    # Topics alternate from a place the seed draws.
    topics = [t.meta["provenance"]["inputs"]["topic"] for t in tasks]
    assert sorted(topics) == ["البحر"] * 3 + ["السوق"] * 3 and topics[0] != topics[1]

    # People accept, fix or reject; the kept ones export as SFT, the fixes as preference pairs.
    verdicts = {0: {"verdict": "accept"}, 1: {"verdict": "reject"}}

    def verify(data: dict[str, Any], _i: int) -> dict[str, Any]:
        index = int(data["candidate"].split()[1])
        return verdicts.get(index % 3, {"verdict": "fix", "text": data["candidate"] + " يا خوي"})

    label_everything(gen.tenant, project["id"], verify)
    sft = exported(gen, project["id"], "chat")
    assert len(sft) == 4  # two of six rejected
    assert all(line["generation"]["batch"] == batch["id"] for line in sft)
    assert all(line["messages"][0] == {"role": "user", "content": "اكتب"} for line in sft)
    pairs = exported(gen, project["id"], "preference")
    assert len(pairs) == 2 and all(p["chosen"] == p["rejected"] + " يا خوي" for p in pairs)
    assert pairs[0]["generation"]["model"] == ["gulf/gulf-model"]


def test_near_duplicates_are_dropped_in_the_batch_and_against_the_project(gen: World, llm: ModelServer) -> None:
    endpoint = register(gen, llm, "dups")
    project = gen.tenant.project({"type": "verify"})
    gen.tenant.add_tasks(project["id"], [{"data": {"candidate": "سؤال عن السوق القديم"}, "unique_id": "old"}])
    # No {index}: items of one topic are the same text; a diacritic or tatweel changes nothing.
    body = {"endpoints": [endpoint["id"]], "template": {"user": "سؤال عن {topic} gen -"}, "count": 8,
            "topics": ["البحرِ", "البحـــر", "السوق القديم", "الصحراء"]}
    batch = generate(gen, project["id"], **body)
    assert (batch["generated"], batch["duplicates"], batch["failed"]) == (2, 6, 0), batch
    assert any(d["of"] == "old" for d in batch["dropped"])
    texts = sorted(t.data["candidate"] for t in tasks_of(gen, project["id"]))
    assert len(texts) == 3 and "سؤال عن الصحراء" in texts
    again = generate(gen, project["id"], **body)
    assert (again["generated"], again["duplicates"]) == (0, 8)
    # A threshold of 1 drops only the same text, as normalised.
    loose = generate(gen, project["id"], **{**body, "topics": ["الصحراء الكبرى"], "count": 1,
                                            "dedup_threshold": 1.0})
    assert loose["generated"] == 1


def test_failures_are_recorded_with_their_reason_and_nothing_is_lost(gen: World, llm: ModelServer) -> None:
    endpoint = register(gen, llm, "broken")
    project = gen.tenant.project({"type": "verify"})
    topics = ["a gen -", "b html x", "c outside x", "d malformed x", "e hang x", "f text x"]
    batch = generate(gen, project["id"], endpoints=[endpoint["id"]], template={"user": "{index}: {topic}"},
                     count=6, topics=topics)
    assert batch["status"] == "done", batch
    assert (batch["generated"], batch["failed"]) == (1, 5), batch
    reasons = sorted(f["reason"] for f in batch["failures"])
    for expected in ("did not answer JSON (text/html)", "data.candidate is missing", "the answer is not JSON",
                     "no answer within 1 seconds (after 2 requests)"):
        assert any(expected in r for r in reasons), (expected, reasons)
    assert len(tasks_of(gen, project["id"])) == 1
    # A template field that no batch has is refused before anything is queued.
    refused = gen.tenant.owner.post(f"/projects/{project['id']}/generate", json={
        "endpoints": [endpoint["id"]], "template": {"user": "about {subject}"}, "count": 1})
    assert field_of(refused) == "template.user"
    with gen.database.reader() as session:
        queued = session.scalar(select(func.count()).select_from(GenerationBatch)
                                .where(GenerationBatch.project_id == project["id"]))
    assert queued == 1


def test_two_endpoints_answer_each_prompt_for_people_to_compare(gen: World, llm: ModelServer) -> None:
    first, second = register(gen, llm, "left"), register(gen, llm, "right")
    project = gen.tenant.project({"type": "pairwise"})
    batch = generate(gen, project["id"], endpoints=[first["id"], second["id"]],
                     template={"user": "Explain {topic} text x"}, count=2, topics=["tides", "dunes"], seed=3)
    assert (batch["generated"], batch["failed"], batch["requests"]) == (2, 0, 4), batch
    for task in tasks_of(gen, project["id"]):
        models = task.meta["provenance"]["model"]
        assert sorted(models) == ["left/left-model", "right/right-model"]
        assert task.data["a"].endswith(models[0].split("/")[1]) and task.data["b"].endswith(models[1].split("/")[1])
        assert task.data["prompt"] in ("Explain tides text x", "Explain dunes text x")
    assert all("response_format" not in a.body for a in llm.received if a.body["model"] == "left-model")
    label_everything(gen.tenant, project["id"], {"choice": "a"})
    pairs = exported(gen, project["id"], "preference")
    assert len(pairs) == 2 and all(p["generation"]["batch"] == batch["id"] for p in pairs)

    chat = gen.tenant.project({"type": "chat", "rewrite": False})
    batch = generate(gen, chat["id"], endpoints=[first["id"], second["id"]],
                     template={"user": "Reply about {topic} text x"}, count=1, topics=["rain"])
    task = tasks_of(gen, chat["id"])[0]
    assert task.data["messages"] == [{"role": "user", "content": "Reply about rain text x"}]
    assert len(task.data["candidates"]) == 2
    label_everything(gen.tenant, chat["id"], {"ratings": [], "choice": 1})
    sft = exported(gen, chat["id"], "chat")
    assert sft[0]["messages"][-1] == {"role": "assistant", "content": task.data["candidates"][1]}
    assert exported(gen, chat["id"], "preference")[0]["rejected"][0]["content"] == task.data["candidates"][0]


@pytest.mark.parametrize(("body", "named"), [
    ({"count": 0}, "count"), ({"count": 1001}, "count"), ({"topics": ["t"] * 101}, "topics"),
    ({"topics": ["x" * 201]}, "topics.0"), ({"endpoints": []}, "endpoints"), ({"temperature": 3}, "temperature"),
    ({"template": {"user": "{topic.upper}"}}, "template.user"), ({"template": {"user": "x" * 20_001}}, "template.user"),
    ({"template": {"assistant": "x", "user": "y"}}, "template.assistant"), ({"colour": "red"}, "colour"),
])
def test_bad_batches_are_refused_naming_the_field(gen: World, llm: ModelServer, body: dict[str, Any],
                                                  named: str) -> None:
    endpoint = register(gen, llm, f"bad-{named}-{len(json.dumps(body))}")
    project = gen.tenant.project({"type": "verify"})
    full = {"endpoints": [endpoint["id"]], "template": {"user": "{topic}"}, "count": 1, **body}
    assert field_of(gen.tenant.owner.post(f"/projects/{project['id']}/generate", json=full)) == named


def test_pairwise_needs_two_endpoints(gen: World, llm: ModelServer) -> None:
    endpoint = register(gen, llm, "alone")
    project = gen.tenant.project({"type": "pairwise"})
    answer = gen.tenant.owner.post(f"/projects/{project['id']}/generate", json={
        "endpoints": [endpoint["id"]], "template": {"user": "{topic}"}, "count": 1})
    assert field_of(answer) == "endpoints"


def test_endpoints_batches_and_generated_data_stay_in_their_organization(gen: World, llm: ModelServer) -> None:
    ours = register(gen, llm, "ours")
    theirs = register(gen, llm, "theirs", org="globex")
    project = gen.tenant.project({"type": "verify"})
    rival_project = gen.rival.project({"type": "verify"})
    batch = generate(gen, project["id"], endpoints=[ours["id"]], template={"user": "{index} gen -"}, count=1)
    body = {"endpoints": [ours["id"]], "template": {"user": "{topic}"}, "count": 1}
    # The rival can neither use our endpoint, nor read our batch, nor generate into our project.
    error_of(gen.rival.owner.post(f"/projects/{rival_project['id']}/generate", json=body), 404)
    error_of(gen.rival.owner.get(f"/generation-batches/{batch['id']}"), 404)
    error_of(gen.rival.owner.get(f"/projects/{project['id']}/generation-batches"), 404)
    error_of(gen.rival.owner.post(f"/projects/{project['id']}/generate",
                                  json={**body, "endpoints": [theirs["id"]]}), 404)
    error_of(gen.tenant.owner.post(f"/projects/{project['id']}/generate", json={**body, "endpoints": [theirs["id"]]}),
             404)
    listed = gen.tenant.owner.get(f"/projects/{project['id']}/generation-batches").json()["items"]
    assert [b["id"] for b in listed] == [batch["id"]]
    assert gen.tenant.member.get(f"/generation-batches/{batch['id']}").status_code == 200


def test_the_sdk_and_the_cli_run_a_batch(gen: World, llm: ModelServer, tmp_path: Any) -> None:
    from click.testing import CliRunner

    from qistas.cli import main
    from qistas.client import Client

    endpoint = register(gen, llm, "sdk")
    project = gen.tenant.project({"type": "verify"})
    token = gen.tenant.owner.headers["authorization"].removeprefix("Bearer ")
    with Client(gen.url, token) as client:
        handle = client.projects.get(project["id"])
        batch = handle.generate(endpoints=[endpoint["id"]], template={"user": "item {index} on {topic} gen -"},
                                count=3, topics=["sand"]).wait(poll=0.1, timeout=30)
        assert (batch.generated, batch.duplicates, batch.failed) == (3, 0, 0)
        assert [b.id for b in handle.generation_batches()] == [batch.id]
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"user": "line {index} about {topic} gen -"}), encoding="utf-8")
    result = CliRunner().invoke(main, ["generate", str(project["id"]), "--endpoint", str(endpoint["id"]),
                                       "--template", str(template), "--count", "2", "--topic", "wind",
                                       "--url", gen.url, "--token", token])
    assert result.exit_code == 0, result.output
    assert "generated 2, near-duplicates dropped 0, failed 0" in result.output
    refused = CliRunner().invoke(main, ["generate", str(project["id"]), "--endpoint", str(endpoint["id"]),
                                        "--template", str(template), "--count", "2", "--url", gen.url,
                                        "--token", "wrong"])
    assert refused.exit_code == 1
    assert len(tasks_of(gen, project["id"])) == 5
