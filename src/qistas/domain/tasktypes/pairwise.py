"""Pairwise preference (RLHF): which of two responses is better, overall and per criterion.

``{"choice": "a" | "b" | "tie"}``, with ``criteria`` ``{"choice", "criteria": {name: choice}}``.
Exported as preference pairs (prompt / chosen / rejected); a tie prefers neither.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, field_validator

from qistas.domain.exportrecords import chunks, provenance, to_json
from qistas.domain.tasktypes.base import (
    ExportFormat,
    FieldName,
    FormField,
    Label,
    Records,
    Spec,
    TaskType,
    distinct_labels,
    fail,
    need,
    obj,
)
from qistas.quality import pairwise as pairwise_quality


class PairwiseSpec(Spec):
    type: Literal["pairwise"]
    prompt_field: FieldName = "prompt"
    a_field: FieldName = "a"
    b_field: FieldName = "b"
    allow_tie: bool = True
    criteria: list[Label] = Field(default_factory=list, max_length=50)

    @field_validator("criteria")
    @classmethod
    def _distinct(cls, criteria: list[str]) -> list[str]:
        return distinct_labels(criteria)


def response_key(prompt: Any, response: Any) -> str:
    """A stable identity of a response to a prompt, so one that recurs across tasks is scored once
    (a response is better or worse for its prompt: the same text under another prompt is another item).
    The standard library's text, spaces and all, so keys stay what earlier exports printed."""
    return hashlib.sha256(json.dumps([prompt, response], ensure_ascii=False).encode()).hexdigest()[:16]


def preference(records: Records, spec: PairwiseSpec) -> Iterator[bytes]:
    """``{"prompt", "chosen", "rejected", ...}`` per pair, as DPO and reward-model trainers read."""
    for chunk in chunks(records()):
        lines = []
        for record in chunk:
            data, choice = record["data"], record["response"]["choice"]
            if choice == "tie":
                continue  # a tie prefers neither
            a, b = data[spec.a_field], data[spec.b_field]
            chosen, rejected = (a, b) if choice == "a" else (b, a)
            line = {"prompt": data[spec.prompt_field], "chosen": chosen, "rejected": rejected,
                    **provenance(record)}
            lines.append(to_json(line) + "\n")
        yield "".join(lines).encode()


def _choice(value: Any, field: str, allow_tie: bool) -> str:
    allowed = ("a", "b", "tie") if allow_tie else ("a", "b")
    if value not in allowed:
        raise fail(field, f"must be one of {', '.join(allowed)}")
    return str(value)


class Pairwise(TaskType[PairwiseSpec]):
    name = "pairwise"
    spec_model = PairwiseSpec
    confidence = ("the posterior probability of the chosen overall choice (Dawid-Skene over the choices, with a "
                  "Bradley-Terry prior where the same responses recur); each criterion's in the details")
    form_fields = (
        FormField("prompt_field", "text", "new.prompt_field"),
        FormField("a_field", "text", "new.a_field"),
        FormField("b_field", "text", "new.b_field"),
        FormField("allow_tie", "bool", "new.allow_tie", True),
        FormField("criteria", "lines", "new.criteria"),
    )
    export_formats = {"preference": ExportFormat("application/x-ndjson", "jsonl", preference)}

    def validate_data(self, spec: PairwiseSpec, data: dict[str, Any]) -> None:
        for name in (spec.prompt_field, spec.a_field, spec.b_field):
            need(data, name, (str, list, dict), "text or a chat")

    def validate_answer(self, spec: PairwiseSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        if spec.criteria:
            given = obj(answer, "answer", {"choice", "criteria"})
            per = obj(given["criteria"], "answer.criteria", set(spec.criteria))
            return {
                "choice": _choice(given["choice"], "answer.choice", spec.allow_tie),
                "criteria": {c: _choice(per[c], f"answer.criteria.{c}", spec.allow_tie) for c in spec.criteria},
            }
        return {"choice": _choice(obj(answer, "answer", {"choice"})["choice"], "answer.choice", spec.allow_tie)}

    def aggregator(self, spec: PairwiseSpec) -> Any:
        return pairwise_quality.PairwiseAggregator(criteria=spec.criteria, allow_tie=spec.allow_tie)

    def context(self, spec: PairwiseSpec, data: dict[str, Any], gold: Any | None) -> Any:
        prompt = data.get(spec.prompt_field)
        return {"a": response_key(prompt, data.get(spec.a_field)), "b": response_key(prompt, data.get(spec.b_field))}

    def answer_score(self, spec: PairwiseSpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        return pairwise_quality.answer_score(answer, response)

    def categories(self, spec: PairwiseSpec) -> list[str]:
        return ["a", "b", "tie"] if spec.allow_tie else ["a", "b"]

    def category(self, spec: PairwiseSpec, answer: Any) -> str | None:
        return answer.get("choice") if isinstance(answer, dict) else None


TASK_TYPE = Pairwise()
