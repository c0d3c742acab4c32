"""Audio and document task types through the API, with their media imported: answers checked
against the recording's duration and the page's size (422 naming the field, nothing written),
results aggregated with a confidence, and each type's own export."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import World
from tests.api.helpers import count_annotations, error_of, take
from tests.api.test_media import upload
from tests.mediafixtures import page_png, wav

SEGMENTS = {"type": "audio_segments", "labels": ["speech", "music"]}
DOCUMENT = {"type": "document_transcription", "labels": ["line"]}


def project(world: World, task: dict[str, Any], rows: list[dict[str, Any]], files: dict[str, bytes],
            n: int = 2) -> int:
    pid = int(world.tenant.project(task, redundancy={"min": n, "max": n})["id"])
    done = upload(world.tenant.owner, pid, rows, files)
    assert done.status_code == 201, done.text
    return pid


def submit(client: Any, lease: dict[str, Any], answer: Any) -> Any:
    return client.post(f"/assignments/{lease['id']}/submit", json={"answer": answer})


@pytest.mark.parametrize(("answer", "field"), [
    ({"segments": [{"start": 1.0, "end": 3.2, "label": "music"}]}, "answer.segments.0.end"),  # past 3 s
    ({"segments": [{"start": 0, "end": 1, "label": "speech"}, {"start": 2.0, "end": 1.5, "label": "music"}]},
     "answer.segments.1.end"),
    ({"segments": [{"start": 1.0, "end": 1.0, "label": "music"}]}, "answer.segments.0.end"),
    ({"segments": [{"start": -0.5, "end": 1.0, "label": "music"}]}, "answer.segments.0.start"),
    ({"segments": [{"start": 0, "end": 1, "label": "noise"}]}, "answer.segments.0.label"),
    ({"segments": [{"start": 0, "end": 0.001 * (k + 1), "label": "speech"} for k in range(501)]}, "answer.segments"),
])
def test_bad_segments_are_refused_naming_the_field(world: World, answer: Any, field: str) -> None:
    pid = project(world, SEGMENTS, [{"data": {"audio": "clip.wav"}}], {"clip.wav": wav()})
    worker = world.tenant.annotators[0]
    lease = take(worker, pid)
    assert lease["task"]["data"]["duration"] == 3.0  # read from the bytes at import
    refused = error_of(submit(worker, lease, answer), 422)
    assert refused["details"]["field"] == field
    assert count_annotations(world.database, pid) == 0
    # The lease still holds: a good answer goes through after the refusal.
    ok = submit(worker, lease, {"segments": [{"start": 0, "end": 3.0, "label": "speech"}]})
    assert ok.status_code == 201, ok.text


def test_segments_aggregate_and_export(world: World) -> None:
    pid = project(world, SEGMENTS, [{"unique_id": "c1", "data": {"audio": "talks/c1.wav"}}],
                  {"talks/c1.wav": wav()})
    answers = [
        {"segments": [{"start": 0.0, "end": 1.0, "label": "speech"}, {"start": 2.0, "end": 3.0, "label": "music"}]},
        {"segments": [{"start": 0.1, "end": 1.1, "label": "speech"}, {"start": 1.9, "end": 2.9, "label": "music"}]},
    ]
    for worker, answer in zip(world.tenant.annotators, answers, strict=False):
        done = submit(worker, take(worker, pid), answer)
        assert done.status_code == 201, done.text
    [result] = world.tenant.owner.get(f"/projects/{pid}/results").json()["items"]
    segments = result["response"]["segments"]
    assert [(s["start"], s["end"], s["label"]) for s in segments] == [(0.05, 1.05, "speech"), (1.95, 2.95, "music")]
    assert 0.5 < result["confidence"] < 1 and result["method"] == "segment_aggregator"
    [line] = world.tenant.owner.get(f"/projects/{pid}/export", params={"format": "segments"}).text.splitlines()
    row = json.loads(line)
    assert row["audio"] == "talks/c1.wav" and row["duration"] == 3.0 and row["unique_id"] == "c1"
    assert [s["label"] for s in row["segments"]] == ["speech", "music"]


def test_audio_transcription_and_classification(world: World) -> None:
    clip = wav(((1.5, 440.0),))
    pid = project(world, {"type": "audio_transcription"}, [{"data": {"audio": "a.wav", "draft": "hello"}}],
                  {"a.wav": clip})
    texts = ["مرحبا بكم في الدوحة", "مرحبا بكم في الدوحه"]
    for worker, text in zip(world.tenant.annotators, texts, strict=False):
        lease = take(worker, pid)
        assert lease["task"]["data"]["audio"].startswith("/api/v1/media/")
        assert error_of(submit(worker, lease, {"text": "  "}), 422)["details"]["field"] == "answer.text"
        assert submit(worker, lease, {"text": text}).status_code == 201
    [result] = world.tenant.owner.get(f"/projects/{pid}/results").json()["items"]
    assert result["response"]["text"] in texts and result["method"] == "text_aggregator"
    [line] = world.tenant.owner.get(f"/projects/{pid}/export", params={"format": "asr"}).text.splitlines()
    assert json.loads(line)["audio"] == "a.wav" and json.loads(line)["duration"] == 1.5

    labels = {"type": "audio_classification", "labels": ["bird", "engine"]}
    pid = project(world, labels, [{"data": {"audio": "a.wav"}}], {"a.wav": clip})
    for worker in world.tenant.annotators[:2]:
        lease = take(worker, pid)
        assert error_of(submit(worker, lease, {"label": "cat"}), 422)["details"]["field"] == "answer.label"
        assert submit(worker, lease, {"label": "engine"}).status_code == 201
    [result] = world.tenant.owner.get(f"/projects/{pid}/results").json()["items"]
    assert result["response"]["label"] == "engine" and result["confidence"] > 0.5
    refused = error_of(world.tenant.owner.post(f"/projects/{pid}/tasks", json=[{"data": {"sound": "x"}}]), 422)
    assert refused["details"]["rows"][0]["message"] == "data.audio is missing"


def test_document_regions_checked_against_the_page_and_aggregated(world: World) -> None:
    pid = project(world, DOCUMENT, [{"unique_id": "p1", "data": {"image": "scans/p1.png"}}],
                  {"scans/p1.png": page_png()}, n=3)
    workers = world.tenant.annotators
    lease = take(workers[0], pid)
    past = {"regions": [{"x": 300, "y": 10, "w": 150, "h": 30, "text": "x"}]}  # the page is 400 wide
    assert error_of(submit(workers[0], lease, past), 422)["details"]["field"] == "answer.regions.0.w"
    bad_text = {"regions": [{"x": 10, "y": 10, "w": 50, "h": 30, "text": None}]}
    assert error_of(submit(workers[0], lease, bad_text), 422)["details"]["field"] == "answer.regions.0.text"
    assert count_annotations(world.database, pid) == 0
    reads = [
        [("بسم الله الرحمن الرحيم", (40, 40, 320, 30)), ("فاتورة رقم 42", (40, 120, 260, 30))],
        [("بسم الله الرحمن الرحيم", (41, 39, 318, 32)), ("فاتوره رقم 42", (38, 121, 262, 29))],
        [("بسم الله الرحمان الرحيم", (40, 41, 320, 30)), ("فاتورة رقم 42", (40, 119, 260, 31))],
    ]
    for n, regions in enumerate(reads):
        held = lease if n == 0 else take(workers[n], pid)
        answer = {"regions": [{"x": x, "y": y, "w": w, "h": h, "text": text} for text, (x, y, w, h) in regions]}
        done = submit(workers[n], held, answer)
        assert done.status_code == 201, done.text
    [result] = world.tenant.owner.get(f"/projects/{pid}/results").json()["items"]
    got = result["response"]["regions"]
    assert [g["text"] for g in got] == ["بسم الله الرحمن الرحيم", "فاتورة رقم 42"]  # the majority's reading
    # each edge the median of three: bottoms 70, 71, 71 -> 71
    assert [(g["x"], g["y"], g["w"], g["h"]) for g in got] == [(40, 40, 320, 31), (40, 120, 260, 30)]
    assert all(g["label"] == "line" for g in got) and 0 < result["confidence"] < 1
    assert result["method"] == "document_aggregator"
    [line] = world.tenant.owner.get(f"/projects/{pid}/export", params={"format": "regions"}).text.splitlines()
    row = json.loads(line)
    assert row["image"] == "scans/p1.png" and (row["width"], row["height"]) == (400, 300)
    assert row["regions"][0]["bbox"] == [40, 40, 320, 31] and row["regions"][1]["text"] == "فاتورة رقم 42"
