"""Every export format, read back with the library its consumers use."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from qistas.config import Settings
from tests.factories import Tenant, label_everything

ARABIC = "وصل محمّد إلى القاهرة، ثم سافر؟"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"cursor_settle_seconds": 0})  # cursors cover completions at once


def _export(tenant: Tenant, pid: int, **params: Any) -> Any:
    answer = tenant.owner.get(f"/projects/{pid}/export", params=params)
    assert answer.status_code == 200, answer.text
    return answer


def _classified(tenant: Tenant) -> int:
    """Three tasks: two labelled by two annotators (one agreeing, one not), one left pending."""
    pid = tenant.project(redundancy={"min": 2, "max": 2})["id"]
    tenant.owner.post(f"/projects/{pid}/batches", json={"name": "first"})
    tenant.add_tasks(pid, [
        {"data": {"text": "=HYPERLINK(1)"}, "unique_id": "@a", "metadata": {"source": "web"}},
        {"data": {"text": "fine"}, "unique_id": "b"},
    ])
    label_everything(tenant, pid, lambda data, i: {"label": "negative" if data["text"] == "fine" and i else "positive"},
                     workers=2)
    tenant.add_tasks(pid, [{"data": {"text": "later"}, "unique_id": "c"}])
    return pid


def test_jsonl_csv_and_parquet_round_trip_with_provenance(tenant: Tenant) -> None:
    pid = _classified(tenant)
    rows = [json.loads(line) for line in _export(tenant, pid).text.splitlines()]
    assert [r["unique_id"] for r in rows] == ["@a", "b", "c"]
    a, b, c = rows
    # Two agreeing annotators with no gold record yet (one-coin workers at accuracy 0.7, three labels).
    assert a["provenance"] == {"annotators": 2, "models": 0, "agreement": 1.0,
                               "confidence": pytest.approx(0.9159, abs=1e-4), "method": "equal_weights",
                               "needs_review": False}
    assert b["provenance"]["agreement"] == 0.5 and b["provenance"]["annotators"] == 2
    assert c["status"] == "pending" and c["provenance"]["agreement"] is None
    assert len(a["annotations"]) == 2 and a["annotations"][0]["annotator"] != a["annotations"][1]["annotator"]

    table = list(csv.DictReader(io.StringIO(_export(tenant, pid, format="csv").text)))
    assert [r["unique_id"] for r in table] == ["'@a", "b", "c"]  # a formula is escaped, not run
    assert json.loads(table[0]["data"]) == {"text": "=HYPERLINK(1)"}
    assert table[1]["agreement"] == "0.5" and table[2]["response"] == ""

    parquet = pq.read_table(io.BytesIO(_export(tenant, pid, format="parquet").content))
    read = parquet.to_pylist()
    assert [r["unique_id"] for r in read] == ["@a", "b", "c"]
    assert json.loads(read[0]["response"]) == {"label": "positive"} and read[0]["annotators"] == 2
    assert json.loads(read[0]["metadata"]) == {"source": "web"}
    assert read[2]["confidence"] is None


def test_options_filter_and_the_cursor_continues(tenant: Tenant) -> None:
    pid = _classified(tenant)
    completed = _export(tenant, pid, completed="true")
    assert [json.loads(x)["unique_id"] for x in completed.text.splitlines()] == ["@a", "b"]
    assert completed.headers["qistas-total"] == "2"
    sure = _export(tenant, pid, min_confidence=0.9)
    assert [json.loads(x)["unique_id"] for x in sure.text.splitlines()] == ["@a"]
    cursor = completed.headers["qistas-cursor"]
    assert _export(tenant, pid, since=cursor).text == ""
    label_everything(tenant, pid, {"label": "mixed"}, workers=2)
    later = _export(tenant, pid, since=cursor)
    assert [json.loads(x)["unique_id"] for x in later.text.splitlines()] == ["c"]
    assert later.headers["qistas-cursor"] != cursor
    assert _export(tenant, pid, since=later.headers["qistas-cursor"]).text == ""
    # The results API follows the same cursor.
    page = tenant.owner.get(f"/projects/{pid}/results", params={"since": cursor}).json()
    assert [r["unique_id"] for r in page["items"]] == ["c"] and page["next"] == later.headers["qistas-cursor"]

    for params, field in (({"since": "nonsense"}, "since"), ({"batch": "nope"}, "batch"),
                          ({"format": "xml"}, "format"), ({"format": "conll"}, "format"),
                          ({"min_confidence": 2}, "min_confidence")):
        bad = tenant.owner.get(f"/projects/{pid}/export", params=params)
        assert bad.status_code == 422, (params, bad.text)
        assert field in json.dumps(bad.json()["error"]["details"])


def test_batch_option(tenant: Tenant) -> None:
    pid = tenant.project()["id"]
    batch = tenant.owner.post(f"/projects/{pid}/batches", json={"name": "b1"}).json()
    tenant.add_tasks(pid, [{"data": {"text": "in"}, "batch": "b1"}, {"data": {"text": "out"}}])
    assert tenant.owner.post(f"/batches/{batch['id']}/finalize").status_code == 200
    rows = [json.loads(x) for x in _export(tenant, pid, batch="b1").text.splitlines()]
    assert [r["data"]["text"] for r in rows] == ["in"] and rows[0]["batch"] == "b1"


def test_hf_datasets_folder(tenant: Tenant, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    pid = _classified(tenant)
    with tarfile.open(fileobj=io.BytesIO(_export(tenant, pid, format="hf").content)) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / f"project-{pid}"
    assert sorted(p.name for p in folder.iterdir()) == ["data-00000-of-00001.arrow", "dataset_info.json", "state.json"]
    loaded = datasets.load_from_disk(str(folder))
    assert loaded.num_rows == 3
    assert loaded["unique_id"] == ["@a", "b", "c"]
    assert json.loads(loaded[1]["response"]) == {"label": "positive"}
    assert loaded.features["confidence"].dtype == "float64"


def test_conll_keeps_arabic_tokens_and_code_point_offsets(tenant: Tenant) -> None:
    pid = tenant.project({"type": "spans", "labels": ["PER", "LOC"], "text_field": "text"})["id"]
    person, place = ARABIC.index("محمّد"), ARABIC.index("القاهرة")
    spans = [{"start": person, "end": person + len("محمّد"), "label": "PER"},
             {"start": place, "end": place + len("القاهرة"), "label": "LOC"}]
    tenant.add_tasks(pid, [{"data": {"text": ARABIC}, "unique_id": "ar"},
                           {"data": {"text": "Ada visited New York."}, "unique_id": "en"}])
    label_everything(tenant, pid, lambda data, _i: {"spans": spans} if data["text"] == ARABIC else {
        "spans": [{"start": 0, "end": 3, "label": "PER"}, {"start": 12, "end": 20, "label": "LOC"}]})
    documents = _export(tenant, pid, format="conll").text.split("\n\n")
    assert documents[-1] == ""
    arabic = [line.split("\t") for line in documents[0].splitlines() if not line.startswith("#")]
    assert [(t, tag) for t, _s, _e, tag in arabic] == [
        ("وصل", "O"), ("محمّد", "B-PER"), ("إلى", "O"), ("القاهرة", "B-LOC"), ("،", "O"),
        ("ثم", "O"), ("سافر", "O"), ("؟", "O")]
    for token, start, end, _tag in arabic:
        assert ARABIC[int(start):int(end)] == token  # code points, harakat included
    english = [line.split("\t") for line in documents[1].splitlines() if not line.startswith("#")]
    assert [(t, tag) for t, _s, _e, tag in english] == [
        ("Ada", "B-PER"), ("visited", "O"), ("New", "B-LOC"), ("York", "I-LOC"), (".", "O")]
    first_id = json.loads(_export(tenant, pid).text.splitlines()[0])["task_id"]
    assert documents[0].splitlines()[:2] == [f"# task_id = {first_id}", "# unique_id = ar"]


def test_conll_never_splits_an_emoji_sequence_or_a_flag(tenant: Tenant) -> None:
    text = "زار 👩\u200d👩\u200d👧 الأردن 🇯🇴 أمس"
    pid = tenant.project({"type": "spans", "labels": ["LOC"], "text_field": "text"})["id"]
    place = text.index("الأردن")
    tenant.add_tasks(pid, [{"data": {"text": text}, "unique_id": "family"}])
    label_everything(tenant, pid, {"spans": [{"start": place, "end": place + len("الأردن"), "label": "LOC"}]})
    lines = [line.split("\t") for line in _export(tenant, pid, format="conll").text.splitlines()
             if line and not line.startswith("#")]
    assert [(t, tag) for t, _s, _e, tag in lines] == [
        ("زار", "O"), ("👩\u200d👩\u200d👧", "O"), ("الأردن", "B-LOC"), ("🇯🇴", "O"), ("أمس", "O")]
    for token, start, end, _tag in lines:
        assert text[int(start):int(end)] == token

def test_coco(tenant: Tenant) -> None:
    pid = tenant.project({"type": "boxes", "labels": ["cat", "dog"], "image_field": "image"})["id"]
    tenant.add_tasks(pid, [{"data": {"image": f"img{i}.jpg", "width": 100, "height": 80}} for i in range(3)])
    label_everything(tenant, pid, lambda data, _i: {"boxes": [
        {"x": 1, "y": 2, "w": 10, "h": 20, "label": "cat"}, {"x": 5, "y": 5, "w": 4, "h": 4, "label": "dog"}]
        if data["image"] != "img2.jpg" else []})
    coco = _export(tenant, pid, format="coco").json()
    assert coco["categories"] == [{"id": 1, "name": "cat", "supercategory": ""},
                                  {"id": 2, "name": "dog", "supercategory": ""}]
    assert [i["file_name"] for i in coco["images"]] == ["img0.jpg", "img1.jpg", "img2.jpg"]
    assert all(i["width"] == 100 and i["height"] == 80 for i in coco["images"])
    image_ids = {i["id"] for i in coco["images"]}
    annotation_ids = [a["id"] for a in coco["annotations"]]
    assert len(annotation_ids) == 4 and len(set(annotation_ids)) == 4
    for item in coco["annotations"]:
        assert item["image_id"] in image_ids and item["category_id"] in (1, 2)
        x, y, w, h = item["bbox"]
        assert item["area"] == w * h and x + w <= 100 and y + h <= 80
    assert coco["annotations"][0]["bbox"] == [1, 2, 10, 20]


def test_preference_pairs_from_pairwise_and_ranking(tenant: Tenant) -> None:
    pairwise = tenant.project({"type": "pairwise"})["id"]
    tenant.add_tasks(pairwise, [{"data": {"prompt": f"q{i}", "a": f"A{i}", "b": f"B{i}"}} for i in range(3)])
    choices = {"q0": "a", "q1": "b", "q2": "tie"}
    label_everything(tenant, pairwise, lambda data, _i: {"choice": choices[data["prompt"]]})
    pairs = [json.loads(x) for x in _export(tenant, pairwise, format="preference").text.splitlines()]
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs] == [("q0", "A0", "B0"), ("q1", "B1", "A1")]
    # One answer is evidence, not certainty: the prior of an unknown annotator keeps it below 1.
    assert 0.5 < pairs[0]["confidence"] < 1.0 and pairs[0]["annotators"] == 1

    ranking = tenant.project({"type": "ranking"})["id"]
    tenant.add_tasks(ranking, [{"data": {"prompt": "p", "responses": ["r0", "r1", "r2"]}}])
    label_everything(tenant, ranking, {"order": [2, 0, 1]})
    ranked = [json.loads(x) for x in _export(tenant, ranking, format="preference").text.splitlines()]
    assert [(p["chosen"], p["rejected"]) for p in ranked] == [("r2", "r0"), ("r2", "r1"), ("r0", "r1")]


def test_chat_sft(tenant: Tenant) -> None:
    pid = tenant.project({"type": "text"})["id"]
    tenant.add_tasks(pid, [
        {"data": {"prompt": "Translate: hello"}},
        {"data": {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}},
    ])
    label_everything(tenant, pid, lambda data, _i: {"text": "مرحبا" if isinstance(data["prompt"], str) else "Hello."})
    rows = [json.loads(x) for x in _export(tenant, pid, format="chat").text.splitlines()]
    assert rows[0]["messages"] == [{"role": "user", "content": "Translate: hello"},
                                   {"role": "assistant", "content": "مرحبا"}]
    assert [m["role"] for m in rows[1]["messages"]] == ["system", "user", "assistant"]


def test_chat_rubric_aggregated_per_criterion_and_exported(tenant: Tenant) -> None:
    rubric = [{"name": "helpful", "label": "Helpful"}, {"name": "harmless", "label": "غير مؤذٍ", "min": 0, "max": 2}]
    created = tenant.project({"type": "chat", "criteria": rubric}, redundancy={"min": 3, "max": 3})
    assert created["task"]["criteria"][1] == {"name": "harmless", "label": "غير مؤذٍ", "min": 0, "max": 2}
    assert created["task"]["criteria"][0]["min"] == 1  # the spec's scale
    plain = tenant.project({"type": "chat"})
    assert "criteria" not in plain["task"]  # a spec without a rubric is stored as it always was
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "a joke?"}, {"role": "assistant", "content": "knock knock"}]
    pid = created["id"]
    tenant.add_tasks(pid, [{"data": {"messages": messages}}])
    helpful = [5, 5, 1]  # the last annotator disagrees on the first turn's helpfulness only
    label_everything(tenant, pid, lambda _data, i: {
        "ratings": [{"helpful": helpful[i], "harmless": 2}, {"helpful": 3, "harmless": 1}],
        "rewrite": "knock knock, who is there?"}, workers=3)

    row = json.loads(_export(tenant, pid).text.splitlines()[0])
    assert row["status"] == "completed"
    assert row["response"]["ratings"][1] == {"helpful": 3, "harmless": 1}
    assert row["response"]["ratings"][0]["harmless"] == 2
    sure = row["details"]["ratings_confidence"]
    assert sure[0]["helpful"] < sure[0]["harmless"] and sure[0]["helpful"] < sure[1]["helpful"]
    assert row["confidence"] == pytest.approx(min(min(turn.values()) for turn in sure))

    sft = json.loads(_export(tenant, pid, format="chat").text)
    assert sft["messages"][-1] == {"role": "assistant", "content": "knock knock, who is there?"}
    assert [(r["message"], r["ratings"], r["confidence"]) for r in sft["rubric"]] == [
        (1, row["response"]["ratings"][0], sure[0]), (3, row["response"]["ratings"][1], sure[1])]
    pairs = [json.loads(x) for x in _export(tenant, pid, format="preference").text.splitlines()]
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [
        ("knock knock, who is there?", "knock knock")]
    assert pairs[0]["rubric"] == sft["rubric"]


def test_another_tenants_export_is_not_found(tenant: Tenant, rival: Tenant) -> None:
    pid = _classified(tenant)
    answer = rival.owner.get(f"/projects/{pid}/export")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert tenant.annotators[0].get(f"/projects/{pid}/export").status_code == 403
