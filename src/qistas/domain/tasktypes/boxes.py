"""Boxes: ``{"boxes": [{"x", "y", "w", "h", "label"}]}`` in pixels of the task's image.

Every coordinate is a finite number of pixels within 0..MAX_PIXELS, and an answer holds at
most MAX_BOXES boxes. When the task's data gives ``width`` and ``height``, a box past the
image is refused; an image imported as media (docs/media.md) has them from its bytes.
Gold matching pairs boxes one to one by label (Hungarian matching) with IoU at least the
spec's ``gold_iou``.
Exported to COCO.
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
from qistas.quality import boxes as box_quality

#: Boxes of one answer. Clustering the answers of a task grows with the square of their
#: boxes: 300 boxes from each of three annotators take about a second.
MAX_BOXES = 300
#: The largest coordinate, in pixels (whole-slide images reach about 200,000).
MAX_PIXELS = 1_000_000


def box_geometry(box: dict[str, Any], field: str, data: dict[str, Any]) -> tuple[float, float, float, float]:
    """A box's ``x, y, w, h``: finite pixels within 0..MAX_PIXELS, ``w, h > 0``, and within the
    image when the task's data gives its ``width`` and ``height``."""
    x, y, w, h = (number(box[k], f"{field}.{k}", low=0, high=MAX_PIXELS) for k in ("x", "y", "w", "h"))
    if w <= 0 or h <= 0:
        raise fail(field, "needs w, h > 0")
    if x + w > MAX_PIXELS or y + h > MAX_PIXELS:
        raise fail(field, f"goes past {MAX_PIXELS} pixels")
    width, height = data.get("width"), data.get("height")
    if isinstance(width, int | float) and x + w > width:
        raise fail(f"{field}.w", f"goes past the image width ({width})")
    if isinstance(height, int | float) and y + h > height:
        raise fail(f"{field}.h", f"goes past the image height ({height})")
    return x, y, w, h


class BoxesSpec(LabelledSpec):
    type: Literal["boxes"]
    image_field: FieldName = "image"
    #: Gold matching: each box must overlap a gold box of its label with at least this IoU.
    gold_iou: float = Field(0.5, gt=0, le=1)


def coco(records: Records, spec: BoxesSpec) -> Iterator[bytes]:
    categories = categories_of(spec.labels)
    category_of = {c["name"]: c["id"] for c in categories}

    def annotations(record: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for box in record["response"]["boxes"]:
            item = {"category_id": category_of[box["label"]], "bbox": [box["x"], box["y"], box["w"], box["h"]],
                    "area": box["w"] * box["h"], "iscrowd": 0}
            if "confidence" in box:
                item["score"] = box["confidence"]
            found.append(item)
        return found

    return coco_stream(records, image_field=spec.image_field, categories=categories, annotations=annotations)


class Boxes(TaskType[BoxesSpec]):
    name = "boxes"
    spec_model = BoxesSpec
    confidence = ("the lowest confidence of the task's boxes (reliability-weighted support times agreement "
                  "in IoU), and lower when annotators drew a box the consensus left out")
    form_fields = (FormField("labels", "lines", "new.labels", hint="new.labels_hint"),
                   FormField("image_field", "text", "new.image_field"))
    export_formats = {"coco": ExportFormat("application/json", "json", coco)}

    def validate_data(self, spec: BoxesSpec, data: dict[str, Any]) -> None:
        need(data, spec.image_field, str, "an image URL or path")

    def media_fields(self, spec: BoxesSpec) -> tuple[str, ...]:
        return (spec.image_field,)

    def validate_answer(self, spec: BoxesSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        boxes = []
        given = at_most(items(obj(answer, "answer", {"boxes"})["boxes"], "answer.boxes"), "answer.boxes",
                        MAX_BOXES, "boxes")
        for i, raw in enumerate(given):
            f = f"answer.boxes.{i}"
            box = obj(raw, f, {"x", "y", "w", "h", "label"})
            x, y, w, h = box_geometry(box, f, data)
            boxes.append({"x": x, "y": y, "w": w, "h": h, "label": label(box["label"], f"{f}.label", spec.labels)})
        return {"boxes": boxes}

    def gold_matches(self, spec: BoxesSpec, answer: dict[str, Any], gold: dict[str, Any]) -> bool:
        return box_quality.boxes_match(answer, gold, min_iou=spec.gold_iou)

    def aggregator(self, spec: BoxesSpec) -> Any:
        return box_quality.BoxAggregator(spec.labels)

    def answer_score(self, spec: BoxesSpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        return box_quality.answer_score(answer, response)

    def context(self, spec: BoxesSpec, data: dict[str, Any], gold: Any | None) -> Any:
        width, height = data.get("width"), data.get("height")
        if isinstance(width, int | float) and isinstance(height, int | float):
            return {"width": width, "height": height}
        return None


TASK_TYPE = Boxes()
