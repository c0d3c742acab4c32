"""Audio segments: ``{"segments": [{"start", "end", "label"}]}``, labelled time ranges
``[start, end)`` in seconds of the task's recording (the spec's ``audio_field``).

Each time is a finite number of seconds, ``start < end``, and an answer holds at most
MAX_SEGMENTS segments. When the task's data gives ``duration`` (a recording imported as
media has it from its bytes, docs/media.md), a segment ending past it is refused.
Aggregation: segments clustered by temporal IoU across annotators, boundaries the weighted
median of the cluster's (``qistas.quality.segments``). Gold matching pairs segments one to
one by label with temporal IoU at least the spec's ``gold_iou``. Exported as ``segments``
lines (JSONL).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from qistas.domain.exportrecords import chunks, media_name, provenance, to_json
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
from qistas.quality import segments as segment_quality

#: Segments of one answer (clustering grows with the square of a task's segments).
MAX_SEGMENTS = 500
#: The longest recording a time may point into, in seconds (a day).
MAX_SECONDS = 86_400.0
#: Times are kept to the millisecond.
PRECISION = 3


class AudioSegmentsSpec(LabelledSpec):
    type: Literal["audio_segments"]
    audio_field: FieldName = "audio"
    #: Gold matching: each segment must overlap a gold segment of its label with at least this temporal IoU.
    gold_iou: float = Field(0.5, gt=0, le=1)


def segments(records: Records, spec: AudioSegmentsSpec) -> Iterator[bytes]:
    """``{"audio", "duration", "segments": [{"start", "end", "label", "confidence"}]}`` per task."""
    for chunk in chunks(records()):
        lines = [to_json({"audio": media_name(r, spec.audio_field), "duration": r["data"].get("duration"),
                          "segments": r["response"]["segments"], "confidence": r["confidence"], **provenance(r)})
                 + "\n" for r in chunk]
        yield "".join(lines).encode()


class AudioSegments(TaskType[AudioSegmentsSpec]):
    name = "audio_segments"
    spec_model = AudioSegmentsSpec
    confidence = ("the lowest confidence of the task's segments (reliability-weighted support times agreement "
                  "in temporal IoU), and lower when annotators marked a segment the consensus left out")
    form_fields = (FormField("labels", "lines", "new.labels", hint="new.labels_hint"),
                   FormField("audio_field", "text", "new.audio_field"))
    export_formats = {"segments": ExportFormat("application/x-ndjson", "jsonl", segments)}

    def validate_data(self, spec: AudioSegmentsSpec, data: dict[str, Any]) -> None:
        need(data, spec.audio_field, str, "an audio file's name or URL")
        if "duration" in data:
            number(data["duration"], "data.duration", low=0, high=MAX_SECONDS)

    def media_fields(self, spec: AudioSegmentsSpec) -> tuple[str, ...]:
        return (spec.audio_field,)

    def validate_answer(self, spec: AudioSegmentsSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        duration = data.get("duration")
        given = at_most(items(obj(answer, "answer", {"segments"})["segments"], "answer.segments"),
                        "answer.segments", MAX_SEGMENTS, "segments")
        found: list[dict[str, Any]] = []
        for i, raw in enumerate(given):
            f = f"answer.segments.{i}"
            segment = obj(raw, f, {"start", "end", "label"})
            start = round(number(segment["start"], f"{f}.start", low=0, high=MAX_SECONDS), PRECISION)
            end = round(number(segment["end"], f"{f}.end", low=0, high=MAX_SECONDS), PRECISION)
            if end <= start:
                raise fail(f"{f}.end", f"must be after the start ({start:g} s)")
            if isinstance(duration, int | float) and not isinstance(duration, bool) and end > duration:
                raise fail(f"{f}.end", f"is past the end of the recording ({duration:g} s)")
            found.append({"start": start, "end": end, "label": label(segment["label"], f"{f}.label", spec.labels)})
        found.sort(key=lambda s: (s["start"], s["end"], spec.labels.index(s["label"])))
        return {"segments": found}

    def gold_matches(self, spec: AudioSegmentsSpec, answer: dict[str, Any], gold: dict[str, Any]) -> bool:
        return segment_quality.segments_match(answer, gold, min_iou=spec.gold_iou)

    def aggregator(self, spec: AudioSegmentsSpec) -> Any:
        return segment_quality.SegmentAggregator(spec.labels)

    def context(self, spec: AudioSegmentsSpec, data: dict[str, Any], gold: Any | None) -> Any:
        duration = data.get("duration")
        if isinstance(duration, int | float) and not isinstance(duration, bool):
            return {"duration": float(duration)}
        return None

    def answer_score(self, spec: AudioSegmentsSpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        return segment_quality.answer_score(answer, response)


TASK_TYPE = AudioSegments()
