"""Spans (NER): ``{"spans": [{"start", "end", "label"}]}``, offsets in code points of the text.

A span may not start or end inside a grapheme cluster (half of a flag, a family emoji, a
letter and its combining marks): it is refused naming the span. An answer holds at most
MAX_SPANS spans. Exported to CoNLL (IOB tags).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from qistas.domain.conll_tokens import iob
from qistas.domain.exportrecords import chunks
from qistas.domain.tasktypes.base import (
    ExportFormat,
    FieldName,
    FormField,
    LabelledSpec,
    Records,
    TaskType,
    at_most,
    fail,
    integer,
    items,
    label,
    need,
    obj,
)
from qistas.graphemes import is_boundary
from qistas.quality import spans as span_quality
from qistas.quality.consensus import span_overlap

MAX_SPANS = 2000


class SpansSpec(LabelledSpec):
    type: Literal["spans"]
    text_field: FieldName = "text"
    #: Gold matching: a span matches a gold span of its label whose character overlap
    #: (intersection over union) is at least this; 1.0 asks for the exact span.
    gold_overlap: float = Field(1.0, gt=0, le=1)


def conll(records: Records, spec: SpansSpec) -> Iterator[bytes]:
    """``token<TAB>start<TAB>end<TAB>tag`` lines, a ``# task_id = N`` line before each text,
    a blank line after it. The tag is the last column, as CoNLL readers expect."""
    for chunk in chunks(records()):
        out: list[str] = []
        for record in chunk:
            text = record["data"].get(spec.text_field, "")
            out.append(f"# task_id = {record['task_id']}\n")
            if record["unique_id"] is not None:
                out.append(f"# unique_id = {' '.join(str(record['unique_id']).split())}\n")
            for token, start, end, tag in iob(text, record["response"]["spans"]):
                out.append(f"{token}\t{start}\t{end}\t{tag}\n")
            out.append("\n")
        yield "".join(out).encode()


class Spans(TaskType[SpansSpec]):
    name = "spans"
    spec_model = SpansSpec
    confidence = ("the lowest posterior probability of any token's decided tag: a task is as sure as its least "
                  "sure token")
    form_fields = (FormField("labels", "lines", "new.labels", hint="new.labels_hint"),
                   FormField("text_field", "text", "new.text_field"))
    export_formats = {"conll": ExportFormat("text/plain; charset=utf-8", "conll", conll)}

    def validate_data(self, spec: SpansSpec, data: dict[str, Any]) -> None:
        need(data, spec.text_field, str, "a string")

    def validate_answer(self, spec: SpansSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        text = data[spec.text_field]
        spans = []
        given = at_most(items(obj(answer, "answer", {"spans"})["spans"], "answer.spans"), "answer.spans",
                        MAX_SPANS, "spans")
        for i, raw in enumerate(given):
            f = f"answer.spans.{i}"
            span = obj(raw, f, {"start", "end", "label"}, frozenset({"text"}))
            start, end = integer(span["start"], f"{f}.start"), integer(span["end"], f"{f}.end")
            if not 0 <= start < end:
                raise fail(f, "needs 0 <= start < end")
            if end > len(text):
                raise fail(f"{f}.end", f"is past the end of the text ({len(text)} code points)")
            for name, offset in (("start", start), ("end", end)):
                if not is_boundary(text, offset):
                    raise fail(f"{f}.{name}", f"cuts a character in two (offset {offset} is inside a grapheme "
                                              "cluster such as an emoji or a letter with its marks)")
            spans.append({"start": start, "end": end, "label": label(span["label"], f"{f}.label", spec.labels)})
        spans.sort(key=lambda s: (s["start"], s["end"], s["label"]))
        return {"spans": spans}

    def gold_matches(self, spec: SpansSpec, answer: dict[str, Any], gold: dict[str, Any]) -> bool:
        given = [(s["start"], s["end"], s["label"]) for s in answer["spans"]]
        unmatched = [(s["start"], s["end"], s["label"]) for s in gold["spans"]]
        if len(given) != len(unmatched):
            return False
        for span in given:  # each span must overlap a gold span of its label well enough
            best = max(unmatched, key=lambda g: (span_overlap(span, g), -g[0]))
            if span_overlap(span, best) < spec.gold_overlap:
                return False
            unmatched.remove(best)
        return True

    def aggregator(self, spec: SpansSpec) -> Any:
        return span_quality.SpanAggregator(spec.labels)

    def context(self, spec: SpansSpec, data: dict[str, Any], gold: Any | None) -> Any:
        return data.get(spec.text_field, "")

    def answer_score(self, spec: SpansSpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        return span_quality.answer_score(answer, response)


TASK_TYPE = Spans()
