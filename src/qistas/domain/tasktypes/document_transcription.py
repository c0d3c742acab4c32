"""Document transcription (OCR): ``{"regions": [{"x", "y", "w", "h", "label", "text"}]}``,
regions of the page image (the spec's ``image_field``) in pixels, each with the text it holds.

Arabic-script pages are a first-class case: texts are stored as typed (logical order, any
direction; the widget's inputs take their direction from their text), compared after Unicode
normalisation, and exported as UTF-8 JSON. A region's ``label`` may be left out when the spec
has one label. An answer holds at most MAX_REGIONS regions of at most MAX_REGION_TEXT
characters; a region past the image's ``width`` or ``height`` is refused (an image imported
as media has them from its bytes). Aggregation: regions by IoU clustering, the text of each
by the text type's ROVER (``qistas.quality.documents``). Gold matching pairs regions one to
one by label with IoU at least ``gold_iou`` and asks each pair's character error rate to be
at most ``gold_cer``. Exported as ``regions`` lines (JSONL).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, field_validator

from qistas.domain.exportrecords import chunks, media_name, provenance, to_json
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
    items,
    label,
    need,
    obj,
)
from qistas.domain.tasktypes.boxes import box_geometry
from qistas.quality import documents as document_quality

#: Regions of one answer (a dense page has a few hundred lines).
MAX_REGIONS = 300
#: Characters of one region's text.
MAX_REGION_TEXT = 10_000


class DocumentTranscriptionSpec(Spec):
    type: Literal["document_transcription"]
    labels: list[Label] = Field(["text"], min_length=1, max_length=1000)
    image_field: FieldName = "image"
    #: Gold matching: each region must overlap a gold region of its label with at least this IoU ...
    gold_iou: float = Field(0.5, gt=0, le=1)
    #: ... and read it with at most this character error rate.
    gold_cer: float = Field(0.1, ge=0, le=1)

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        return distinct_labels(labels)


def regions(records: Records, spec: DocumentTranscriptionSpec) -> Iterator[bytes]:
    """``{"image", "width", "height", "regions": [{"bbox": [x, y, w, h], "label", "text",
    "confidence"}]}`` per page, regions top to bottom."""
    for chunk in chunks(records()):
        lines = []
        for r in chunk:
            data = r["data"]
            found = [{"bbox": [g["x"], g["y"], g["w"], g["h"]], "label": g["label"], "text": g["text"],
                      **({"confidence": g["confidence"]} if "confidence" in g else {})}
                     for g in r["response"]["regions"]]
            lines.append(to_json({"image": media_name(r, spec.image_field), "width": data.get("width"),
                                  "height": data.get("height"), "regions": found, "confidence": r["confidence"],
                                  **provenance(r)}) + "\n")
        yield "".join(lines).encode()


class DocumentTranscription(TaskType[DocumentTranscriptionSpec]):
    name = "document_transcription"
    spec_model = DocumentTranscriptionSpec
    confidence = ("the lowest region confidence (the region's support times its agreement in IoU, times its "
                  "text's confidence), and lower when annotators drew a region the consensus left out")
    form_fields = (FormField("labels", "lines", "new.labels", hint="new.labels_hint"),
                   FormField("image_field", "text", "new.image_field"))
    export_formats = {"regions": ExportFormat("application/x-ndjson", "jsonl", regions)}

    def validate_data(self, spec: DocumentTranscriptionSpec, data: dict[str, Any]) -> None:
        need(data, spec.image_field, str, "an image URL or path")

    def media_fields(self, spec: DocumentTranscriptionSpec) -> tuple[str, ...]:
        return (spec.image_field,)

    def validate_answer(self, spec: DocumentTranscriptionSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        found: list[dict[str, Any]] = []
        given = at_most(items(obj(answer, "answer", {"regions"})["regions"], "answer.regions"), "answer.regions",
                        MAX_REGIONS, "regions")
        for i, raw in enumerate(given):
            f = f"answer.regions.{i}"
            region = obj(raw, f, {"x", "y", "w", "h", "text"}, frozenset({"label"}))
            x, y, w, h = box_geometry(region, f, data)
            if "label" in region:
                name = label(region["label"], f"{f}.label", spec.labels)
            elif len(spec.labels) == 1:
                name = spec.labels[0]
            else:
                raise fail(f"{f}.label", "is missing")
            text = region["text"]
            if not isinstance(text, str):
                raise fail(f"{f}.text", "must be text")
            if len(text) > MAX_REGION_TEXT:
                raise fail(f"{f}.text", f"is longer than {MAX_REGION_TEXT} characters")
            found.append({"x": x, "y": y, "w": w, "h": h, "label": name, "text": text})
        return {"regions": found}

    def gold_matches(self, spec: DocumentTranscriptionSpec, answer: dict[str, Any], gold: dict[str, Any]) -> bool:
        return document_quality.regions_match(answer, gold, min_iou=spec.gold_iou, max_cer=spec.gold_cer)

    def aggregator(self, spec: DocumentTranscriptionSpec) -> Any:
        return document_quality.DocumentAggregator(spec.labels)

    def context(self, spec: DocumentTranscriptionSpec, data: dict[str, Any], gold: Any | None) -> Any:
        width, height = data.get("width"), data.get("height")
        if isinstance(width, int | float) and isinstance(height, int | float):
            return {"width": width, "height": height}
        return None

    def answer_score(self, spec: DocumentTranscriptionSpec, data: dict[str, Any], answer: Any,
                     response: Any) -> float:
        return document_quality.answer_score(answer, response)


TASK_TYPE = DocumentTranscription()
