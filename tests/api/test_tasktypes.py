"""The task types over HTTP: specs checked on create, every answer checked on submit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from qistas.domain.tasktypes import plain_response
from tests.api.conftest import World
from tests.api.helpers import count_annotations, field_of, stats, submit, take

# Arabic, an emoji with a skin-tone modifier (two code points, four UTF-16 units) and a
# combining mark: offsets count code points, whatever UTF-16 or grapheme clusters say.
MIXED = "قال: hello 👋🏽 café\u0301 نعم"
assert len(MIXED) == 23 and len(MIXED.encode("utf-16-le")) // 2 == 25


@dataclass
class Case:
    spec: dict[str, Any]
    data: dict[str, Any]
    valid: Any
    stored: Any
    invalid: list[tuple[Any, str]] = field(default_factory=list)  # (answer, field named)


CASES: dict[str, Case] = {
    "classification": Case(
        {"type": "classification", "labels": ["cat", "dog"], "text_field": "text"},
        {"text": "a small furry animal"},
        {"label": "dog"}, {"label": "dog"},
        [({"label": "cow"}, "answer.label"), ({"label": 1}, "answer.label"), ({}, "answer.label"),
         ({"label": "dog", "extra": 1}, "answer.extra"), (["dog"], "answer"), ("dog", "answer"),
         ({"labels": ["dog"]}, "answer.label")],
    ),
    "classification-multi": Case(
        {"type": "classification", "labels": ["red", "green", "blue"], "multi": True},
        {"image": "x.png"},
        {"labels": ["blue", "red"]}, {"labels": ["red", "blue"]},
        [({"labels": ["red", "pink"]}, "answer.labels.1"), ({"labels": "red"}, "answer.labels"),
         ({"labels": ["red", "red"]}, "answer.labels"), ({"label": "red"}, "answer.labels"),
         ({"labels": [], "why": "x"}, "answer.why")],
    ),
    "spans": Case(
        {"type": "spans", "labels": ["PER", "LOC"], "text_field": "text"},
        {"text": MIXED},
        {"spans": [{"start": 20, "end": 23, "label": "LOC"}, {"start": 0, "end": 3, "label": "PER", "text": "قال"}]},
        {"spans": [{"start": 0, "end": 3, "label": "PER"}, {"start": 20, "end": 23, "label": "LOC"}]},
        [({"spans": [{"start": 20, "end": 24, "label": "LOC"}]}, "answer.spans.0.end"),
         ({"spans": [{"start": 22, "end": 25, "label": "LOC"}]}, "answer.spans.0.end"),  # UTF-16 length
         # A span may not cut a grapheme cluster: the emoji and its skin tone, é and its accent.
         ({"spans": [{"start": 11, "end": 12, "label": "PER"}]}, "answer.spans.0.end"),
         ({"spans": [{"start": 12, "end": 13, "label": "PER"}]}, "answer.spans.0.start"),
         ({"spans": [{"start": 14, "end": 18, "label": "PER"}]}, "answer.spans.0.end"),
         ({"spans": [{"start": 0, "end": 3, "label": "ORG"}]}, "answer.spans.0.label"),
         ({"spans": [{"start": 3, "end": 3, "label": "PER"}]}, "answer.spans.0"),
         ({"spans": [{"start": -1, "end": 3, "label": "PER"}]}, "answer.spans.0"),
         ({"spans": [{"start": "0", "end": 3, "label": "PER"}]}, "answer.spans.0.start"),
         ({"spans": [{"start": 0, "end": 3}]}, "answer.spans.0.label"),
         ({"spans": [{"start": 0, "end": 3, "label": "PER", "score": 1}]}, "answer.spans.0.score"),
         ({"spans": {"start": 0}}, "answer.spans"), ({}, "answer.spans")],
    ),
    "boxes": Case(
        {"type": "boxes", "labels": ["car"], "image_field": "image"},
        {"image": "https://img.test/1.png", "width": 100, "height": 50},
        {"boxes": [{"x": 10, "y": 5, "w": 90, "h": 45, "label": "car"}]},
        {"boxes": [{"x": 10.0, "y": 5.0, "w": 90.0, "h": 45.0, "label": "car"}]},
        [({"boxes": [{"x": 10, "y": 5, "w": 91, "h": 4, "label": "car"}]}, "answer.boxes.0.w"),
         ({"boxes": [{"x": 0, "y": 5, "w": 9, "h": 46, "label": "car"}]}, "answer.boxes.0.h"),
         ({"boxes": [{"x": -1, "y": 0, "w": 9, "h": 4, "label": "car"}]}, "answer.boxes.0.x"),
         ({"boxes": [{"x": 0, "y": 0, "w": 0, "h": 4, "label": "car"}]}, "answer.boxes.0"),
         ({"boxes": [{"x": "0", "y": 0, "w": 9, "h": 4, "label": "car"}]}, "answer.boxes.0.x"),
         ({"boxes": [{"x": True, "y": 0, "w": 9, "h": 4, "label": "car"}]}, "answer.boxes.0.x"),
         ({"boxes": [{"x": 0, "y": 0, "w": 9, "h": 4, "label": "bus"}]}, "answer.boxes.0.label"),
         ({"boxes": [{"x": 0, "y": 0, "w": 9, "h": 4}]}, "answer.boxes.0.label"),
         ({"boxes": "all"}, "answer.boxes")],
    ),
    "classification-image": Case(
        {"type": "classification", "labels": ["cat", "dog"], "image_field": "photo"},
        {"photo": "https://img.test/cat.png"},
        {"label": "cat"}, {"label": "cat"},
        [({"label": "bird"}, "answer.label")],
    ),
    "polygons": Case(
        {"type": "polygons", "labels": ["road", "tree"], "image_field": "image"},
        {"image": "https://img.test/2.png", "width": 100, "height": 50},
        {"polygons": [{"points": [[0, 0], [100, 0], [50, 50]], "label": "road"}]},
        {"polygons": [{"points": [[0.0, 0.0], [100.0, 0.0], [50.0, 50.0]], "label": "road"}]},
        [({"polygons": [{"points": [[0, 0], [101, 0], [50, 50]], "label": "road"}]}, "answer.polygons.0.points.1"),
         ({"polygons": [{"points": [[0, 0], [10, 0], [5, 51]], "label": "road"}]}, "answer.polygons.0.points.2"),
         ({"polygons": [{"points": [[0, 0], [10, 0]], "label": "road"}]}, "answer.polygons.0.points"),
         ({"polygons": [{"points": [[0, 0]] * 1001, "label": "road"}]}, "answer.polygons.0.points"),
         ({"polygons": [{"points": [[0, 0], [10, 10], [20, 20]], "label": "road"}]}, "answer.polygons.0.points"),
         ({"polygons": [{"points": [[0, 0], [10, 0], [-1, 5]], "label": "road"}]}, "answer.polygons.0.points.2"),
         ({"polygons": [{"points": [[0, 0], [10, 0], [5]], "label": "road"}]}, "answer.polygons.0.points.2"),
         ({"polygons": [{"points": [[0, 0], [10, 0], ["5", 5]], "label": "road"}]}, "answer.polygons.0.points.2"),
         ({"polygons": [{"points": [[0, 0], [10, 0], [5, 5]], "label": "sky"}]}, "answer.polygons.0.label"),
         ({"polygons": [{"points": [[0, 0], [10, 0], [5, 5]]}]}, "answer.polygons.0.label"),
         ({"polygons": [{"points": [[0, 0], [10, 0], [5, 5]], "label": "road"}] * 101}, "answer.polygons"),
         ({"polygons": "all"}, "answer.polygons")],
    ),
    "keypoints": Case(
        {"type": "keypoints", "keypoints": ["head", "left_hand", "right_hand"],
         "skeleton": [["head", "left_hand"], ["head", "right_hand"]]},
        {"image": "https://img.test/3.png", "width": 100, "height": 50},
        {"instances": [{"keypoints": [[50, 10, 2], [20.5, 40, 1], [7, 7, 0]]}]},
        {"instances": [{"keypoints": [[50.0, 10.0, 2], [20.5, 40.0, 1], [0, 0, 0]]}]},
        [({"instances": [{"keypoints": [[50, 51, 2], [20, 40, 1], [0, 0, 0]]}]}, "answer.instances.0.keypoints.0"),
         ({"instances": [{"keypoints": [[50, 10, 2], [101, 40, 1], [0, 0, 0]]}]}, "answer.instances.0.keypoints.1"),
         ({"instances": [{"keypoints": [[50, 10, 2], [20, 40, 1]]}]}, "answer.instances.0.keypoints"),
         ({"instances": [{"keypoints": [[50, 10, 3], [20, 40, 1], [0, 0, 0]]}]}, "answer.instances.0.keypoints.0"),
         ({"instances": [{"keypoints": [[50, 10, 2.0], [20, 40, 1], [0, 0, 0]]}]},
          "answer.instances.0.keypoints.0"),
         ({"instances": [{"keypoints": [[0, 0, 0], [0, 0, 0], [0, 0, 0]]}]}, "answer.instances.0.keypoints"),
         ({"instances": [{"keypoints": [[50, 10], [20, 40, 1], [0, 0, 0]]}]}, "answer.instances.0.keypoints.0"),
         ({"instances": [{"points": []}]}, "answer.instances.0.keypoints"),
         ({"instances": [{"keypoints": [[50, 10, 2], [20, 40, 1], [0, 0, 0]]}] * 101}, "answer.instances"),
         ({"instances": {}}, "answer.instances")],
    ),
    "pairwise": Case(
        {"type": "pairwise", "allow_tie": False},
        {"prompt": "Say hi", "a": "hi", "b": [{"role": "assistant", "content": "مرحبا"}]},
        {"choice": "b"}, {"choice": "b"},
        [({"choice": "tie"}, "answer.choice"), ({"choice": "c"}, "answer.choice"), ({"choice": 1}, "answer.choice"),
         ({"choice": "a", "criteria": {}}, "answer.criteria"), ({}, "answer.choice")],
    ),
    "pairwise-criteria": Case(
        {"type": "pairwise", "criteria": ["helpful", "harmless"]},
        {"prompt": "p", "a": "x", "b": "y"},
        {"choice": "tie", "criteria": {"helpful": "a", "harmless": "tie"}},
        {"choice": "tie", "criteria": {"helpful": "a", "harmless": "tie"}},
        [({"choice": "a"}, "answer.criteria"),
         ({"choice": "a", "criteria": {"helpful": "a"}}, "answer.criteria.harmless"),
         ({"choice": "a", "criteria": {"helpful": "a", "harmless": "b", "honest": "a"}}, "answer.criteria.honest"),
         ({"choice": "a", "criteria": {"helpful": "x", "harmless": "b"}}, "answer.criteria.helpful"),
         ({"choice": "a", "criteria": ["a", "b"]}, "answer.criteria")],
    ),
    "ranking": Case(
        {"type": "ranking"},
        {"prompt": "best?", "responses": ["r0", "r1", "r2"]},
        {"order": [2, 0, 1]}, {"order": [2, 0, 1]},
        [({"order": [0, 1]}, "answer.order"), ({"order": [0, 1, 1]}, "answer.order"),
         ({"order": [0, 1, 3]}, "answer.order"), ({"order": [0, 1, 2, 3]}, "answer.order"),
         ({"order": ["0", 1, 2]}, "answer.order"), ({"order": [True, False, 2]}, "answer.order"),
         ({"order": [0.0, 1, 2]}, "answer.order"), ({"order": "210"}, "answer.order"),
         ({"order": [2, 0, 1], "why": ""}, "answer.why")],
    ),
    "rating": Case(
        {"type": "rating", "min": 1, "max": 7, "prompt_field": "prompt"},
        {"prompt": "How fluent?"},
        {"rating": 7}, {"rating": 7},
        [({"rating": 0}, "answer.rating"), ({"rating": 8}, "answer.rating"), ({"rating": 3.5}, "answer.rating"),
         ({"rating": "3"}, "answer.rating"), ({"rating": True}, "answer.rating"), ({"stars": 3}, "answer.rating")],
    ),
    "text": Case(
        {"type": "text"},
        {"prompt": "Translate: hello"},
        {"text": "مرحبا 👋"}, {"text": "مرحبا 👋"},
        [({"text": ""}, "answer.text"), ({"text": "   "}, "answer.text"), ({"text": 5}, "answer.text"),
         ({"text": "a\u0000b"}, "answer.text"), ({"text": "ok", "lang": "en"}, "answer.lang")],
    ),
    "chat": Case(
        {"type": "chat", "min": 1, "max": 3},
        {"messages": [{"role": "user", "content": "شلونك؟"}, {"role": "assistant", "content": "زين"},
                      {"role": "user", "content": "وش تسوي اليوم؟"}],
         "candidates": ["ولا شي", "بروح البحر", "I am fine"]},
        {"ratings": [2], "choice": 1, "rewrite": "بروح البحر إن شاء الله"},
        {"ratings": [2], "choice": 1, "rewrite": "بروح البحر إن شاء الله"},
        [({"ratings": [2], "choice": 1}, "answer.rewrite"), ({"ratings": [], "choice": 1, "rewrite": "x"},
                                                            "answer.ratings"),
         ({"ratings": [2, 2], "choice": 1, "rewrite": "x"}, "answer.ratings"),
         ({"ratings": [4], "choice": 1, "rewrite": "x"}, "answer.ratings.0"),
         ({"ratings": [True], "choice": 1, "rewrite": "x"}, "answer.ratings.0"),
         ({"ratings": [2], "choice": 3, "rewrite": "x"}, "answer.choice"),
         ({"ratings": [2], "choice": "1", "rewrite": "x"}, "answer.choice"),
         ({"ratings": [2], "choice": 1, "rewrite": " "}, "answer.rewrite"),
         ({"ratings": [2], "choice": 1, "rewrite": "x", "note": 1}, "answer.note")],
    ),
    "chat-criteria": Case(
        {"type": "chat", "rewrite": False,
         "criteria": [{"name": "helpful", "label": "مفيد"}, {"name": "harmless", "min": 0, "max": 2}]},
        {"messages": [{"role": "user", "content": "شلونك؟"}, {"role": "assistant", "content": "زين"},
                      {"role": "user", "content": "وش تسوي اليوم؟"}, {"role": "assistant", "content": "بروح البحر"}]},
        {"ratings": [{"harmless": 0, "helpful": 5}, {"helpful": 1, "harmless": 2}]},
        {"ratings": [{"helpful": 5, "harmless": 0}, {"helpful": 1, "harmless": 2}]},
        [({"ratings": [4, 2]}, "answer.ratings.0"),
         ({"ratings": [{"helpful": 5}, {"helpful": 1, "harmless": 2}]}, "answer.ratings.0.harmless"),
         ({"ratings": [{"helpful": 5, "harmless": 0, "honest": 1}, {"helpful": 1, "harmless": 2}]},
          "answer.ratings.0.honest"),
         ({"ratings": [{"helpful": 5, "harmless": 0}, {"helpful": 1, "harmless": 3}]}, "answer.ratings.1.harmless"),
         ({"ratings": [{"helpful": 0, "harmless": 0}, {"helpful": 1, "harmless": 2}]}, "answer.ratings.0.helpful"),
         ({"ratings": [{"helpful": "5", "harmless": 0}, {"helpful": 1, "harmless": 2}]}, "answer.ratings.0.helpful"),
         ({"ratings": [{"helpful": 5, "harmless": 0}]}, "answer.ratings"),
         ({"ratings": [{"helpful": 5, "harmless": 0}, {"helpful": 1, "harmless": 2}], "rewrite": "x"},
          "answer.rewrite")],
    ),
    "verify": Case(
        {"type": "verify"},
        {"prompt": "اكتب سؤالاً باللهجة الخليجية", "candidate": "وين أحصل مطعم زين؟"},
        {"verdict": "fix", "text": "وين ألقى مطعم زين؟"}, {"verdict": "fix", "text": "وين ألقى مطعم زين؟"},
        [({"verdict": "maybe"}, "answer.verdict"), ({"verdict": "fix"}, "answer.text"),
         ({"verdict": "fix", "text": ""}, "answer.text"), ({"verdict": "accept", "text": "x"}, "answer.text"),
         ({}, "answer.verdict"), ({"verdict": "reject", "why": 1}, "answer.why")],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_answers_are_validated_and_nothing_invalid_is_stored(world: World, name: str) -> None:
    case, tenant = CASES[name], world.tenant
    created = tenant.owner.post("/projects", json={"name": name, "task": case.spec})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.json()["task"]["type"] == case.spec["type"]
    tenant.add_tasks(pid, [{"data": case.data}])
    taken = take(tenant.annotators[0], pid)
    for answer, named in case.invalid:
        response = tenant.annotators[0].post(f"/assignments/{taken['id']}/submit", json={"answer": answer})
        assert field_of(response) == named, (answer, response.text)
    assert count_annotations(world.database, pid) == 0
    assert stats(tenant.owner, pid)["annotations"] == 0
    assert stats(tenant.owner, pid)["active_leases"] == 1  # the lease survived the refusals
    stored = submit(tenant.annotators[0], taken["id"], case.valid).json()
    assert stored["answer"] == case.stored
    assert count_annotations(world.database, pid) == 1
    result = tenant.owner.get(f"/projects/{pid}/results").json()["items"]
    # The response is the answer, with each part's confidence where the type has parts.
    assert [plain_response(r["response"]) for r in result] == [case.stored]


def test_answer_with_lone_surrogate_is_refused(world: World) -> None:
    pid = world.tenant.project(task=CASES["text"].spec)["id"]
    world.tenant.add_tasks(pid, [{"data": {"prompt": "p"}}])
    taken = take(world.tenant.annotators[0], pid)
    body = b'{"answer": {"text": "bad \\ud800 half"}}'
    response = world.tenant.annotators[0].post(f"/assignments/{taken['id']}/submit", content=body,
                                               headers={"content-type": "application/json"})
    assert field_of(response) == "answer.text"
    assert count_annotations(world.database, pid) == 0


@pytest.mark.parametrize(("spec", "named"), [
    ({"type": "poll", "labels": ["a"]}, "task.type"),
    ({"labels": ["a"]}, "task.type"),
    ({"type": "classification", "labels": ["a"], "colour": "red"}, "task.colour"),
    ({"type": "classification", "labels": []}, "task.labels"),
    ({"type": "classification", "labels": ["a", "a"]}, "task.labels"),
    ({"type": "classification", "labels": "a"}, "task.labels"),
    ({"type": "classification", "labels": ["a", ""]}, "task.labels.1"),
    ({"type": "classification", "labels": ["a"], "multi": "maybe"}, "task.multi"),
    ({"type": "spans", "labels": ["PER"], "text_field": ""}, "task.text_field"),
    ({"type": "boxes", "labels": ["car"], "image_field": 3}, "task.image_field"),
    ({"type": "pairwise", "criteria": "helpful"}, "task.criteria"),
    ({"type": "ranking", "responses_field": None}, "task.responses_field"),
    ({"type": "rating", "min": 5, "max": 5}, "task.max"),
    ({"type": "rating", "max": 0}, "task.max"),
    ({"type": "rating", "min": "low"}, "task.min"),
    ({"type": "text", "labels": ["a"]}, "task.labels"),
    ({"type": "chat", "min": 3, "max": 2}, "task.max"),
    ({"type": "chat", "criteria": []}, "task.criteria"),
    ({"type": "chat", "criteria": [{"name": "a"}, {"name": "a"}]}, "task.criteria"),
    ({"type": "chat", "criteria": [{"name": "a b"}]}, "task.criteria.0.name"),
    ({"type": "chat", "criteria": [{"name": "a", "min": 2, "max": 1}]}, "task.criteria.0.max"),
    ({"type": "chat", "criteria": [{"name": "a", "max": 1000}]}, "task.criteria.0.max"),
    ({"type": "chat", "criteria": [{"name": "a", "colour": "red"}]}, "task.criteria.0.colour"),
    ({"type": "verify", "gold_text_min": 2}, "task.gold_text_min"),
    ({"type": "polygons", "labels": ["a"], "gold_iou": 0}, "task.gold_iou"),
    ({"type": "keypoints", "keypoints": []}, "task.keypoints"),
    ({"type": "keypoints", "keypoints": ["a", "b"], "skeleton": [["a", "c"]]}, "task.skeleton"),
    ({"type": "keypoints", "keypoints": ["a", "b"], "sigmas": [0.1]}, "task.sigmas"),
    ({"type": "keypoints", "keypoints": ["a", "a"]}, "task.keypoints"),
])
def test_bad_specs_are_refused_naming_the_field(world: World, spec: dict[str, Any], named: str) -> None:
    response = world.tenant.owner.post("/projects", json={"name": "bad", "task": spec})
    assert field_of(response) == named, response.text


def test_every_type_accepts_its_minimal_spec_with_defaults(world: World) -> None:
    minimal = {
        "classification": {"labels": ["a"]}, "spans": {"labels": ["a"]}, "boxes": {"labels": ["a"]},
        "pairwise": {}, "ranking": {}, "rating": {}, "text": {}, "chat": {}, "verify": {},
        "polygons": {"labels": ["a"]}, "keypoints": {"keypoints": ["a"]},
    }
    for kind, extra in minimal.items():
        response = world.tenant.owner.post("/projects", json={"name": kind, "task": {"type": kind, **extra}})
        assert response.status_code == 201, response.text
        assert response.json()["task"]["type"] == kind
    rating = world.tenant.owner.post("/projects", json={"name": "r", "task": {"type": "rating"}}).json()
    assert (rating["task"]["min"], rating["task"]["max"]) == (1, 5)


@pytest.mark.parametrize(("spec", "data", "named"), [
    ({"type": "spans", "labels": ["PER"]}, {"txt": "x"}, "data.text is missing"),
    ({"type": "spans", "labels": ["PER"]}, {"text": 5}, "data.text must be a string"),
    ({"type": "boxes", "labels": ["car"]}, {"image": ["x"]}, "data.image must be"),
    ({"type": "pairwise"}, {"prompt": "p", "a": "x"}, "data.b is missing"),
    ({"type": "ranking"}, {"prompt": "p", "responses": ["only one"]}, "data.responses must hold 2 to 50"),
    ({"type": "ranking"}, {"prompt": "p", "responses": "ab"}, "data.responses must be a list"),
    ({"type": "classification", "labels": ["a"], "text_field": "text"}, {"text": None}, "data.text must be"),
    ({"type": "text"}, {}, "data.prompt is missing"),
    ({"type": "chat"}, {"messages": []}, "data.messages is empty"),
    ({"type": "chat"}, {"messages": [{"role": "bot", "content": "x"}]}, "data.messages.0.role"),
    ({"type": "chat"}, {"messages": [{"role": "user", "content": "x"}], "candidates": ["one"]},
     "data.candidates: must hold 2 to 10"),
    ({"type": "verify"}, {"prompt": "p"}, "data.candidate is missing"),
    ({"type": "polygons", "labels": ["a"]}, {"img": "x.png"}, "data.image is missing"),
    ({"type": "keypoints", "keypoints": ["a"], "image_field": "photo"}, {"photo": 3}, "data.photo must be"),
    ({"type": "classification", "labels": ["a"], "image_field": "photo"}, {"text": "x"}, "data.photo is missing"),
])
def test_task_data_is_checked_against_the_type(world: World, spec: dict[str, Any], data: dict[str, Any],
                                              named: str) -> None:
    pid = world.tenant.project(task=spec)["id"]
    response = world.tenant.owner.post(f"/projects/{pid}/tasks", json=[{"data": data}])
    assert response.status_code == 422, response.text
    rows = response.json()["error"]["details"]["rows"]
    assert len(rows) == 1 and rows[0]["row"] == 1
    assert rows[0]["message"].startswith(named), rows
    assert stats(world.tenant.owner, pid)["tasks_total"] == 0
