"""Every size a client controls is bounded and refused with the field named: spec sizes,
labels that look alike, a task's text, an answer's elements, bytes and numbers."""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

import httpx
import pytest

from qistas.domain.tasktypes.base import MAX_ANSWER_BYTES, MAX_DATA_STRING, MAX_DATA_TEXT
from qistas.domain.tasktypes.boxes import MAX_BOXES, MAX_PIXELS
from qistas.domain.tasktypes.spans import MAX_SPANS
from tests.api.conftest import World
from tests.api.helpers import count_annotations, error_of, field_of, submit, take


def _create(world: World, task: dict[str, Any], **fields: Any) -> httpx.Response:
    return world.tenant.owner.post("/projects", json={"name": "bounds", "task": task, **fields})


@pytest.mark.parametrize(("labels", "why"), [
    (["pos", "pos\u200b"], "a zero-width space"),
    (["pos", "\u2066pos\u2069"], "bidi isolates around it"),
    (["pos", "ｐｏｓ"], "fullwidth forms (NFKC)"),
    (["caf\u00e9", "cafe\u0301"], "composed and decomposed"),
    (["pos", "\u0440os"], "a Cyrillic letter among Latin ones"),
    (["\u0440\u043e\u0441", "poc"], "a whole-Cyrillic look-alike"),
])
def test_labels_that_look_alike_are_refused(world: World, labels: list[str], why: str) -> None:
    response = _create(world, {"type": "classification", "labels": labels})
    assert field_of(response) == "task.labels", why
    criteria = _create(world, {"type": "pairwise", "criteria": labels})
    assert field_of(criteria) == "task.criteria", why


def test_labels_of_one_script_or_latin_with_another_are_kept(world: World) -> None:
    for labels in (["PER-شخص", "ORG-منظمة"], ["да", "нет"], ["名前", "なまえ", "ナマエ"], ["pos", "Pos"]):
        assert _create(world, {"type": "classification", "labels": labels}).status_code == 201, labels


def test_spec_sizes_are_bounded(world: World) -> None:
    assert field_of(_create(world, {"type": "rating", "min": 0, "max": 3_000_000})) == "task.max"
    assert field_of(_create(world, {"type": "rating", "min": 10**30, "max": 10**30 + 4})) == "task.min"
    assert field_of(_create(world, {"type": "classification", "labels": [f"l{i}" for i in range(1001)]})) \
        == "task.labels"
    assert field_of(_create(world, {"type": "classification", "labels": ["x" * 201]})) == "task.labels.0"
    assert field_of(_create(world, {"type": "text"}, instructions="x" * 200_001)) == "instructions"


def test_a_task_text_is_bounded(world: World) -> None:
    pid = world.tenant.project({"type": "text"})["id"]
    rows = [{"data": {"prompt": "x" * (MAX_DATA_STRING + 1)}},
            {"data": {"prompt": "ok", "context": ["y" * MAX_DATA_STRING] * (MAX_DATA_TEXT // MAX_DATA_STRING)}},
            {"data": {"prompt": "z" * MAX_DATA_STRING}}]
    refused = error_of(world.tenant.owner.post(f"/projects/{pid}/tasks", json=rows), 422)
    problems = {p["row"]: p["message"] for p in refused["details"]["rows"]}
    assert set(problems) == {1, 2}
    assert problems[1].startswith("data.prompt: ") and problems[2].startswith("data: ")


@pytest.fixture
def boxes_lease(world: World) -> tuple[int, int]:
    pid = world.tenant.project({"type": "boxes", "labels": ["car"]})["id"]
    world.tenant.add_tasks(pid, [{"data": {"image": "https://img.test/1.png"}}])  # no size given
    return pid, take(world.tenant.annotators[0], pid)["id"]


BOX = {"x": 0, "y": 0, "w": 10, "h": 10, "label": "car"}


@pytest.mark.parametrize(("box", "field"), [
    ({**BOX, "w": 1e308, "h": 1e308}, "answer.boxes.0.w"),
    ({**BOX, "x": 10**400}, "answer.boxes.0.x"),
    ({**BOX, "x": MAX_PIXELS - 5}, "answer.boxes.0"),
    ({**BOX, "y": -0.5}, "answer.boxes.0.y"),
])
def test_box_numbers_are_finite_and_bounded(world: World, boxes_lease: tuple[int, int], box: dict[str, Any],
                                            field: str) -> None:
    pid, lease = boxes_lease
    response = world.tenant.annotators[0].post(f"/assignments/{lease}/submit", json={"answer": {"boxes": [box]}})
    assert field_of(response) == field
    assert count_annotations(world.database, pid) == 0


def test_an_answer_holds_a_bounded_number_of_elements(world: World, boxes_lease: tuple[int, int]) -> None:
    pid, lease = boxes_lease
    worker = world.tenant.annotators[0]
    refused = worker.post(f"/assignments/{lease}/submit", json={"answer": {"boxes": [BOX] * (MAX_BOXES + 1)}})
    assert field_of(refused) == "answer.boxes"
    # Over the answer's byte limit: refused before it is parsed, in the one shape.
    body = json.dumps({"answer": {"boxes": [BOX] * 25_000}}).encode()
    assert len(body) > MAX_ANSWER_BYTES
    assert error_of(worker.post(f"/assignments/{lease}/submit", content=body,
                                headers={"content-type": "application/json"}), 413)["code"] == "too_large"
    assert count_annotations(world.database, pid) == 0
    assert submit(worker, lease, {"boxes": [BOX] * MAX_BOXES}).status_code == 201

    spans = world.tenant.project({"type": "spans", "labels": ["PER"]})["id"]
    world.tenant.add_tasks(spans, [{"data": {"text": "a" * 10}}])
    many = [{"start": 0, "end": 1, "label": "PER"}] * (MAX_SPANS + 1)
    answer = worker.post(f"/assignments/{take(worker, spans)['id']}/submit", json={"answer": {"spans": many}})
    assert field_of(answer) == "answer.spans"
    multi = world.tenant.project({"type": "classification", "labels": ["a", "b"], "multi": True})["id"]
    world.tenant.add_tasks(multi, [{"data": {"text": "x"}}])
    started = time.monotonic()
    answer = worker.post(f"/assignments/{take(worker, multi)['id']}/submit",
                         json={"answer": {"labels": ["a"] * 50_000}})
    assert field_of(answer) == "answer.labels" and time.monotonic() - started < 5


def _random_boxes(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"x": rng.uniform(0, 2000), "y": rng.uniform(0, 2000), "w": rng.uniform(10, 80),
             "h": rng.uniform(10, 80), "label": "car"} for _ in range(MAX_BOXES)]


def test_a_large_answer_does_not_hold_the_event_loop(world: World) -> None:
    tenant = world.tenant
    pid = tenant.project({"type": "boxes", "labels": ["car"]}, redundancy={"min": 3, "max": 3})["id"]
    tenant.add_tasks(pid, [{"data": {"image": "https://img.test/2.png"}}])
    for n, worker in enumerate(tenant.annotators[:2]):
        submit(worker, take(worker, pid)["id"], {"boxes": _random_boxes(n)})
    last = tenant.annotators[2]
    lease = take(last, pid)["id"]
    took: list[float] = []

    def heavy() -> None:
        started = time.monotonic()
        submit(last, lease, {"boxes": _random_boxes(2)})
        took.append(time.monotonic() - started)

    sender = threading.Thread(target=heavy)
    waits = []
    with httpx.Client(base_url=world.url) as probe:
        sender.start()
        while sender.is_alive():
            started = time.monotonic()
            assert probe.get("/healthz").status_code == 200
            waits.append(time.monotonic() - started)
        sender.join()
    # The third answer clusters 900 boxes (a second or more); /healthz answers meanwhile.
    assert took[0] > 0.3, took
    assert max(waits) < took[0] / 2, (max(waits), took)
