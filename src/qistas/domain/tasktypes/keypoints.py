"""Keypoints: ``{"instances": [{"keypoints": [[x, y, v], ...]}]}``, one ``[x, y, v]`` per
keypoint the spec names, in its order, in pixels of the task's image.

``v`` is COCO's visibility: 0 not labelled (its x and y are stored as 0), 1 labelled but
hidden, 2 labelled and visible. An instance labels at least one keypoint; an answer holds at
most MAX_INSTANCES. A labelled keypoint past the image (when the data gives ``width`` and
``height``) is refused. Instances compare by OKS with the spec's per-keypoint ``sigmas``;
gold matching pairs instances one to one at OKS at least ``gold_oks``. Exported to COCO
keypoints (``keypoints``, ``num_keypoints``, and the category's ``keypoints`` and
``skeleton``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from qistas.domain.tasktypes.base import (
    ExportFormat,
    FieldName,
    FormField,
    Label,
    Records,
    Spec,
    TaskType,
    at_most,
    distinct_labels,
    fail,
    integer,
    items,
    need,
    number,
    obj,
)
from qistas.domain.tasktypes.coco import coco as coco_stream
from qistas.domain.tasktypes.polygons import MAX_PIXELS, image_context
from qistas.quality import keypoints as keypoint_quality

#: Instances (skeletons) of one answer.
MAX_INSTANCES = 100
MAX_KEYPOINTS = 100

Sigma = Annotated[float, Field(gt=0, le=1)]


class KeypointsSpec(Spec):
    type: Literal["keypoints"]
    #: The keypoints' names, in the order every instance gives them.
    keypoints: list[Label] = Field(min_length=1, max_length=MAX_KEYPOINTS)
    #: Lines drawn between keypoints: pairs of names.
    skeleton: list[tuple[Label, Label]] = Field(default_factory=list, max_length=1000)
    #: Each keypoint's OKS sigma (how far a placement may stray, relative to the object's size).
    sigmas: list[Sigma] | None = None
    #: The name of what the instances are (COCO's category).
    label: Label = "object"
    image_field: FieldName = "image"
    gold_oks: float = Field(0.5, gt=0, le=1)

    @field_validator("keypoints")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        return distinct_labels(names)

    @field_validator("skeleton")
    @classmethod
    def _joins_known_keypoints(cls, edges: list[tuple[str, str]], info: ValidationInfo) -> list[tuple[str, str]]:
        names = info.data.get("keypoints") or []
        for i, (a, b) in enumerate(edges):
            for name in (a, b):
                if name not in names:
                    raise ValueError(f"edge {i}: {name!r} is not one of the keypoints")
            if a == b:
                raise ValueError(f"edge {i} joins {a!r} to itself")
        return edges

    @field_validator("sigmas")
    @classmethod
    def _one_per_keypoint(cls, sigmas: list[float] | None, info: ValidationInfo) -> list[float] | None:
        names = info.data.get("keypoints") or []
        if sigmas is not None and len(sigmas) != len(names):
            raise ValueError(f"{len(sigmas)} sigmas given for {len(names)} keypoints")
        return sigmas

    def sigma_list(self) -> list[float]:
        return list(self.sigmas) if self.sigmas is not None else [keypoint_quality.DEFAULT_SIGMA] * len(self.keypoints)


def coco(records: Records, spec: KeypointsSpec) -> Iterator[bytes]:
    index = {name: i + 1 for i, name in enumerate(spec.keypoints)}
    categories = [{"id": 1, "name": spec.label, "supercategory": "", "keypoints": list(spec.keypoints),
                   "skeleton": [[index[a], index[b]] for a, b in spec.skeleton]}]

    def annotations(record: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for instance in record["response"]["instances"]:
            points = instance["keypoints"]
            placed = [p for p in points if p[2] > 0]
            xs, ys = [p[0] for p in placed], [p[1] for p in placed]
            item = {"category_id": 1, "keypoints": [c for p in points for c in p], "num_keypoints": len(placed),
                    "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                    # the area OKS is scaled by, here and in COCO's evaluation
                    "area": keypoint_quality.as_instance(points).area, "iscrowd": 0}
            if "confidence" in instance:
                item["score"] = instance["confidence"]
            found.append(item)
        return found

    return coco_stream(records, image_field=spec.image_field, categories=categories, annotations=annotations)


class Keypoints(TaskType[KeypointsSpec]):
    name = "keypoints"
    spec_model = KeypointsSpec
    confidence = ("the lowest confidence of the task's instances (reliability-weighted support times agreement "
                  "in OKS), and lower when annotators drew an instance the consensus left out")
    form_fields = (FormField("keypoints", "lines", "new.keypoints"),
                   FormField("image_field", "text", "new.image_field"))
    export_formats = {"coco": ExportFormat("application/json", "json", coco)}

    def validate_data(self, spec: KeypointsSpec, data: dict[str, Any]) -> None:
        need(data, spec.image_field, str, "an image URL or path")

    def media_fields(self, spec: KeypointsSpec) -> tuple[str, ...]:
        return (spec.image_field,)

    def validate_answer(self, spec: KeypointsSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        width, height = data.get("width"), data.get("height")
        given = at_most(items(obj(answer, "answer", {"instances"})["instances"], "answer.instances"),
                        "answer.instances", MAX_INSTANCES, "instances")
        instances = []
        for i, raw in enumerate(given):
            f = f"answer.instances.{i}.keypoints"
            points = items(obj(raw, f"answer.instances.{i}", {"keypoints"})["keypoints"], f)
            if len(points) != len(spec.keypoints):
                raise fail(f, f"has {len(points)} points; give one [x, y, v] per keypoint ({len(spec.keypoints)})")
            out = [self._point(p, f"{f}.{j}", width, height) for j, p in enumerate(points)]
            if not any(p[2] for p in out):
                raise fail(f, "labels no keypoint")
            instances.append({"keypoints": out})
        return {"instances": instances}

    @staticmethod
    def _point(value: Any, field: str, width: Any, height: Any) -> list[float | int]:
        triple = items(value, field)
        if len(triple) != 3:
            raise fail(field, "must be [x, y, v]")
        v = integer(triple[2], field)
        if v not in (0, 1, 2):
            raise fail(field, "v must be 0 (not labelled), 1 (hidden) or 2 (visible)")
        x = number(triple[0], field, low=0, high=MAX_PIXELS)
        y = number(triple[1], field, low=0, high=MAX_PIXELS)
        if v == 0:
            return [0, 0, 0]
        if isinstance(width, int | float) and x > width:
            raise fail(field, f"x {x:g} is past the image width ({width})")
        if isinstance(height, int | float) and y > height:
            raise fail(field, f"y {y:g} is past the image height ({height})")
        return [x, y, v]

    def gold_matches(self, spec: KeypointsSpec, answer: dict[str, Any], gold: dict[str, Any]) -> bool:
        return keypoint_quality.keypoints_match(answer, gold, n_keypoints=len(spec.keypoints),
                                                sigmas=spec.sigma_list(), min_oks=spec.gold_oks)

    def aggregator(self, spec: KeypointsSpec) -> Any:
        return keypoint_quality.KeypointAggregator(len(spec.keypoints), sigmas=spec.sigma_list())

    def answer_score(self, spec: KeypointsSpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        return keypoint_quality.answer_score(answer, response, n_keypoints=len(spec.keypoints),
                                             sigmas=spec.sigma_list())

    def context(self, spec: KeypointsSpec, data: dict[str, Any], gold: Any | None) -> Any:
        return image_context(data)


TASK_TYPE = Keypoints()
