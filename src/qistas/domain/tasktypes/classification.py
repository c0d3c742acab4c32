"""Classification: one label (``{"label": x}``) or, with ``multi``, several (``{"labels": [..]}``).

With ``image_field`` the task shows an image (a URL, or a file imported with the tasks, see
docs/media.md) with zoom and pan: image classification, aggregated like any other.

Single label: Dawid–Skene-family posteriors (the default classifier, chosen per project) with
gold tasks clamped; before the first fit, each annotator is a one-coin worker with their
gold accuracy. Multi-label: each label is its own yes/no question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from qistas.domain.tasktypes.base import (
    FieldName,
    FormField,
    LabelledSpec,
    TaskType,
    at_most,
    fail,
    items,
    label,
    need,
    obj,
)
from qistas.quality import multilabel, single_label


class ClassificationSpec(LabelledSpec):
    type: Literal["classification"]
    multi: bool = False
    text_field: FieldName | None = None
    #: A field naming an image (a URL, or a file imported with the tasks): shown with zoom and pan.
    image_field: FieldName | None = None


class Classification(TaskType[ClassificationSpec]):
    name = "classification"
    spec_model = ClassificationSpec
    confidence = ("single label: the posterior probability of the chosen label; multi-label: the lowest "
                  "posterior probability that a label's yes/no decision is right")
    form_fields = (
        FormField("labels", "lines", "new.labels", hint="new.labels_hint"),
        FormField("multi", "bool", "new.multi", False),
        FormField("text_field", "text", "new.text_field"),
        FormField("image_field", "text", "new.image_field"),
    )

    def validate_data(self, spec: ClassificationSpec, data: dict[str, Any]) -> None:
        if spec.text_field:
            need(data, spec.text_field, str, "a string")
        if spec.image_field:
            need(data, spec.image_field, str, "an image URL or path")

    def media_fields(self, spec: ClassificationSpec) -> tuple[str, ...]:
        return (spec.image_field,) if spec.image_field else ()

    def validate_answer(self, spec: ClassificationSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        if spec.multi:
            given = at_most(items(obj(answer, "answer", {"labels"})["labels"], "answer.labels"), "answer.labels",
                            len(spec.labels), "labels")
            chosen = [label(v, f"answer.labels.{i}", spec.labels) for i, v in enumerate(given)]
            if len(set(chosen)) != len(chosen):
                raise fail("answer.labels", "labels repeat")
            return {"labels": sorted(chosen, key=spec.labels.index)}
        return {"label": label(obj(answer, "answer", {"label"})["label"], "answer.label", spec.labels)}

    def gold_from_text(self, spec: ClassificationSpec, value: str) -> Any:
        return {"labels": [v for v in value.split("|") if v]} if spec.multi else {"label": value}

    def aggregator(self, spec: ClassificationSpec) -> Any:
        if spec.multi:
            return multilabel.MultiLabelAggregator(spec.labels)
        return single_label.SingleLabelAggregator(spec.labels)

    def context(self, spec: ClassificationSpec, data: dict[str, Any], gold: Any | None) -> Any:
        if not spec.multi and isinstance(gold, dict):
            return gold.get("label")
        return None

    def weighs_gold(self, spec: ClassificationSpec) -> bool:
        return not spec.multi

    def prior_params(self, spec: ClassificationSpec, accuracies: Sequence[float]) -> dict[str, Any]:
        k = len(spec.labels)
        # Arrays, not lists: these params are loaded at once and never stored.
        return {"priors": np.full(k, 1.0 / k),
                "confusions": np.stack([single_label.one_coin(a, k) for a in accuracies])}

    def answer_score(self, spec: ClassificationSpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        if spec.multi:
            return multilabel.answer_score(answer, response)
        return single_label.answer_score(answer, response)

    def categories(self, spec: ClassificationSpec) -> list[str]:
        return [] if spec.multi else list(spec.labels)

    def category(self, spec: ClassificationSpec, answer: Any) -> str | None:
        if spec.multi or not isinstance(answer, dict):
            return None
        value = answer.get("label")
        return value if isinstance(value, str) else None


TASK_TYPE = Classification()
