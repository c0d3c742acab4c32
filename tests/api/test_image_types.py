"""Polygons, keypoints and image classification over HTTP: images imported as media bound the
answers, results aggregate across annotators, and the COCO exports read back with pycocotools."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stdout
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from qistas.config import Settings
from tests.api.conftest import World
from tests.api.helpers import count_annotations, field_of, take
from tests.api.test_media import png, upload
from tests.factories import Tenant, label_everything

SKELETON = {"type": "keypoints", "keypoints": ["nose", "left_eye", "right_eye", "tail"],
            "skeleton": [["nose", "left_eye"], ["nose", "right_eye"], ["nose", "tail"]],
            "sigmas": [0.03, 0.03, 0.03, 0.08], "label": "cat"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"cursor_settle_seconds": 0})


def circle(cx: float, cy: float, r: float, n: int = 24) -> list[list[float]]:
    return [[round(cx + r * math.cos(t), 2), round(cy + r * math.sin(t), 2)]
            for t in np.linspace(0, 2 * math.pi, n, endpoint=False)]


def coco_of(raw: bytes, tmp_path: Any) -> COCO:
    path = tmp_path / "coco.json"
    path.write_bytes(raw)
    with redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        return COCO(str(path))


def evaluate(truth: COCO, kind: str, sigmas: list[float] | None = None) -> float:
    """COCO's AP of the export's annotations (with their scores) against themselves."""
    detections = [{**a, "score": a.get("score", 1.0)} for a in truth.dataset["annotations"]]
    with redirect_stdout(io.StringIO()):
        found = truth.loadRes(detections)
        evaluation = COCOeval(truth, found, kind)
        if sigmas is not None:
            evaluation.params.kpt_oks_sigmas = np.array(sigmas)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0])


def test_media_images_bound_polygon_and_keypoint_answers(world: World) -> None:
    tenant = world.tenant
    for spec, bad, good in (
        ({"type": "polygons", "labels": ["cat"]},
         {"polygons": [{"points": [[1, 1], [41, 1], [20, 20]], "label": "cat"}]},
         {"polygons": [{"points": [[1, 1], [40, 1], [20, 30]], "label": "cat"}]}),
        (SKELETON, {"instances": [{"keypoints": [[10, 31, 2], [0, 0, 0], [0, 0, 0], [0, 0, 0]]}]},
         {"instances": [{"keypoints": [[10, 30, 2], [0, 0, 0], [0, 0, 0], [40, 0, 1]]}]}),
    ):
        pid = tenant.project(spec, redundancy={"min": 1, "max": 1})["id"]
        assert upload(tenant.owner, pid, [{"data": {"image": "a.png"}}], {"a.png": png(40, 30)}).status_code == 201
        lease = take(tenant.annotators[0], pid)
        assert lease["task"]["data"]["image"].startswith("/api/v1/media/")
        refused = tenant.annotators[0].post(f"/assignments/{lease['id']}/submit", json={"answer": bad})
        named = "answer.polygons.0.points.1" if spec["type"] == "polygons" else "answer.instances.0.keypoints.0"
        assert field_of(refused) == named
        assert "past the image" in refused.json()["error"]["message"]
        assert count_annotations(world.database, pid) == 0
        done = tenant.annotators[0].post(f"/assignments/{lease['id']}/submit", json={"answer": good})
        assert done.status_code == 201, done.text


def test_image_classification_takes_its_image_as_media(world: World) -> None:
    tenant = world.tenant
    spec = {"type": "classification", "labels": ["red", "green"], "multi": True, "image_field": "photo"}
    pid = tenant.project(spec)["id"]
    assert upload(tenant.owner, pid, [{"data": {"photo": "p.png"}}], {"p.png": png()}).status_code == 201
    data = take(tenant.annotators[0], pid)["task"]["data"]
    assert data["photo"].startswith("/api/v1/media/") and (data["width"], data["height"]) == (40, 30)


# pycocotools' mask decoder predates numpy 2's __array__ copy keyword.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_polygons_aggregate_and_export_coco_segmentation(tenant: Tenant, tmp_path: Any) -> None:
    pid = tenant.project({"type": "polygons", "labels": ["cat", "dog"]}, redundancy={"min": 3, "max": 3})["id"]
    tenant.add_tasks(pid, [{"data": {"image": f"img{i}.png", "width": 200, "height": 100}, "unique_id": f"i{i}"}
                           for i in range(2)])

    def drawn(data: dict[str, Any], worker: int) -> dict[str, Any]:
        shift = (worker - 1) * 2.0
        cat = [[x + shift, y] for x, y in circle(60, 50, 30)]
        dog = [[120, 10], [190, 10], [190, 90], [120, 90]]
        return {"polygons": [{"points": cat, "label": "cat"}] + ([{"points": dog, "label": "dog"}]
                                                                   if data["image"] == "img0.png" else [])}

    label_everything(tenant, pid, drawn, workers=3)
    results = {r["unique_id"]: r for r in tenant.owner.get(f"/projects/{pid}/results").json()["items"]}
    assert len(results["i0"]["response"]["polygons"]) == 2 and len(results["i1"]["response"]["polygons"]) == 1
    assert results["i0"]["confidence"] > 0.8 and results["i0"]["method"] == "polygon_aggregator"

    raw = tenant.owner.get(f"/projects/{pid}/export", params={"format": "coco"})
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("application/json")
    coco = coco_of(raw.content, tmp_path)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog"]
    images = coco.loadImgs(coco.getImgIds())
    assert {(i["width"], i["height"]) for i in images} == {(200, 100)}
    annotations = coco.loadAnns(coco.getAnnIds())
    assert len(annotations) == 3
    for item in annotations:
        mask = coco.annToMask(item)
        assert mask.shape == (100, 200)
        assert abs(int(mask.sum()) - item["area"]) <= 0.05 * item["area"] + 40  # pixel grid vs polygon area
        x, y, w, h = item["bbox"]
        assert x >= 0 and x + w <= 200 and y >= 0 and y + h <= 100
    [dog] = [a for a in annotations if a["category_id"] == 2]
    assert dog["area"] == 70 * 80 and dog["bbox"] == [120, 10, 70, 80]
    assert evaluate(coco, "segm") == pytest.approx(1.0)


def test_keypoints_aggregate_and_export_coco_keypoints(tenant: Tenant, tmp_path: Any) -> None:
    pid = tenant.project(SKELETON, redundancy={"min": 3, "max": 3})["id"]
    tenant.add_tasks(pid, [{"data": {"image": "cat.jpg", "width": 300, "height": 200}}])
    truth = [[100, 50, 2], [90, 40, 2], [110, 40, 2], [200, 150, 1]]

    def drawn(_data: dict[str, Any], worker: int) -> dict[str, Any]:
        points = [[x + worker, y, v] for x, y, v in truth]
        if worker == 2:
            points[3] = [0, 0, 0]  # one annotator did not see the tail
        return {"instances": [{"keypoints": points}]}

    label_everything(tenant, pid, drawn, workers=3)
    [result] = tenant.owner.get(f"/projects/{pid}/results").json()["items"]
    [instance] = result["response"]["instances"]
    assert instance["keypoints"][0] == [101.0, 50.0, 2] and instance["keypoints"][3][2] == 1
    assert result["method"] == "keypoint_aggregator"
    assert len(result["details"]["keypoints"][0]) == 4

    raw = tenant.owner.get(f"/projects/{pid}/export", params={"format": "coco"}).content
    coco = coco_of(raw, tmp_path)
    [category] = coco.loadCats(coco.getCatIds())
    assert category["name"] == "cat" and category["keypoints"] == SKELETON["keypoints"]
    assert category["skeleton"] == [[1, 2], [1, 3], [1, 4]]
    [item] = coco.loadAnns(coco.getAnnIds())
    assert item["num_keypoints"] == 4 and len(item["keypoints"]) == 12
    assert item["keypoints"][:3] == [101.0, 50.0, 2]
    assert evaluate(coco, "keypoints", SKELETON["sigmas"]) == pytest.approx(1.0)
    assert json.loads(raw)["images"][0]["file_name"] == "cat.jpg"
