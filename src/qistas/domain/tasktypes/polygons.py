"""Polygons: ``{"polygons": [{"points": [[x, y], ...], "label"}]}`` in pixels of the task's image.

Each polygon has 3 to MAX_POLYGON_POINTS points, each a pair of finite numbers of pixels
within 0..MAX_PIXELS, and encloses some area; an answer holds at most MAX_POLYGONS. When the
task's data gives ``width`` and ``height`` (an image imported as media has them from its
bytes, docs/media.md), a point past the image is refused. Polygons are filled by the even-odd
rule. Gold matching pairs polygons one to one by label with mask IoU at least the spec's
``gold_iou``. Exported to COCO with ``segmentation`` polygons.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from qistas.domain.tasktypes.base import (
    ExportFormat,
    FieldName,
    FormField,
    LabelledSpec,
    Records,
    TaskType,
    at_most,
    fail,
    items,
    label,
    need,
    number,
    obj,
)
from qistas.domain.tasktypes.coco import categories_of
from qistas.domain.tasktypes.coco import coco as coco_stream
from qistas.quality import polygons as polygon_quality

#: Polygons of one answer, and points of one polygon. Clustering compares every pair of
#: overlapping polygons as masks (about a millisecond a pair).
MAX_POLYGONS = 100
MAX_POLYGON_POINTS = 1000
#: The largest coordinate, in pixels (as for boxes).
MAX_PIXELS = 1_000_000


class PolygonsSpec(LabelledSpec):
    type: Literal["polygons"]
    image_field: FieldName = "image"
    #: Gold matching: each polygon must overlap a gold polygon of its label with at least this mask IoU.
    gold_iou: float = Field(0.5, gt=0, le=1)


def point(value: Any, field: str, width: Any, height: Any) -> list[float]:
    """A pair ``[x, y]`` of pixels within the image (when its size is known)."""
    pair = items(value, field)
    if len(pair) != 2:
        raise fail(field, "must be a pair [x, y]")
    x = number(pair[0], field, low=0, high=MAX_PIXELS)
    y = number(pair[1], field, low=0, high=MAX_PIXELS)
    if isinstance(width, int | float) and x > width:
        raise fail(field, f"x {x:g} is past the image width ({width})")
    if isinstance(height, int | float) and y > height:
        raise fail(field, f"y {y:g} is past the image height ({height})")
    return [x, y]


def image_context(data: dict[str, Any]) -> dict[str, float] | None:
    width, height = data.get("width"), data.get("height")
    if isinstance(width, int | float) and isinstance(height, int | float):
        return {"width": width, "height": height}
    return None


def coco(records: Records, spec: PolygonsSpec) -> Iterator[bytes]:
    categories = categories_of(spec.labels)
    category_of = {c["name"]: c["id"] for c in categories}

    def annotations(record: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for polygon in record["response"]["polygons"]:
            points = polygon["points"]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            item = {"category_id": category_of[polygon["label"]],
                    "segmentation": [[c for p in points for c in p]],
                    "area": polygon_quality.polygon_area(points),
                    "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], "iscrowd": 0}
            if "confidence" in polygon:
                item["score"] = polygon["confidence"]
            found.append(item)
        return found

    return coco_stream(records, image_field=spec.image_field, categories=categories, annotations=annotations)


class Polygons(TaskType[PolygonsSpec]):
    name = "polygons"
    spec_model = PolygonsSpec
    confidence = ("the lowest confidence of the task's polygons (reliability-weighted support times agreement "
                  "in mask IoU), and lower when annotators drew a polygon the consensus left out")
    form_fields = (FormField("labels", "lines", "new.labels", hint="new.labels_hint"),
                   FormField("image_field", "text", "new.image_field"))
    export_formats = {"coco": ExportFormat("application/json", "json", coco)}

    def validate_data(self, spec: PolygonsSpec, data: dict[str, Any]) -> None:
        need(data, spec.image_field, str, "an image URL or path")

    def media_fields(self, spec: PolygonsSpec) -> tuple[str, ...]:
        return (spec.image_field,)

    def validate_answer(self, spec: PolygonsSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        width, height = data.get("width"), data.get("height")
        given = at_most(items(obj(answer, "answer", {"polygons"})["polygons"], "answer.polygons"), "answer.polygons",
                        MAX_POLYGONS, "polygons")
        polygons = []
        for i, raw in enumerate(given):
            f = f"answer.polygons.{i}"
            polygon = obj(raw, f, {"points", "label"})
            raw_points = at_most(items(polygon["points"], f"{f}.points"), f"{f}.points", MAX_POLYGON_POINTS,
                                 "points")
            if len(raw_points) < 3:
                raise fail(f"{f}.points", f"has {len(raw_points)} points; a polygon needs at least 3")
            points = [point(p, f"{f}.points.{j}", width, height) for j, p in enumerate(raw_points)]
            if polygon_quality.polygon_area(points) <= 0:
                raise fail(f"{f}.points", "encloses no area")
            polygons.append({"points": points, "label": label(polygon["label"], f"{f}.label", spec.labels)})
        return {"polygons": polygons}

    def gold_matches(self, spec: PolygonsSpec, answer: dict[str, Any], gold: dict[str, Any]) -> bool:
        return polygon_quality.polygons_match(answer, gold, min_iou=spec.gold_iou)

    def aggregator(self, spec: PolygonsSpec) -> Any:
        return polygon_quality.PolygonAggregator(spec.labels)

    def answer_score(self, spec: PolygonsSpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        return polygon_quality.answer_score(answer, response)

    def context(self, spec: PolygonsSpec, data: dict[str, Any], gold: Any | None) -> Any:
        return image_context(data)


TASK_TYPE = Polygons()
