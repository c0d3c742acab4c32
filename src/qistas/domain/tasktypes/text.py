"""Free text (SFT answers, transcription, rewrite): ``{"text": "..."}``.

Gold matching compares the texts with whitespace collapsed. Exported as chat messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from qistas.domain.exportrecords import chunks, provenance, to_json
from qistas.domain.tasktypes.base import ExportFormat, FieldName, FormField, Records, Spec, TaskType, fail, need, obj
from qistas.quality import text as text_quality

MAX_TEXT_ANSWER = 100_000


class TextSpec(Spec):
    type: Literal["text"]
    prompt_field: FieldName = "prompt"


def chat(records: Records, spec: TextSpec) -> Iterator[bytes]:
    """``{"messages": [user..., {"role": "assistant", "content": answer}]}`` per task."""
    for chunk in chunks(records()):
        lines = []
        for record in chunk:
            prompt = record["data"][spec.prompt_field]
            if isinstance(prompt, list):
                messages = list(prompt)  # already a conversation
            else:
                messages = [{"role": "user", "content": prompt if isinstance(prompt, str) else to_json(prompt)}]
            messages.append({"role": "assistant", "content": record["response"]["text"]})
            lines.append(to_json({"messages": messages, **provenance(record)}) + "\n")
        yield "".join(lines).encode()


class Text(TaskType[TextSpec]):
    name = "text"
    spec_model = TextSpec
    confidence = ("the mean, over the aligned word positions, of the probability that the consensus word is "
                  "right (reliability-weighted vote); needs_review when the answers disagree")
    form_fields = (FormField("prompt_field", "text", "new.prompt_field"),)
    export_formats = {"chat": ExportFormat("application/x-ndjson", "jsonl", chat)}

    def validate_data(self, spec: TextSpec, data: dict[str, Any]) -> None:
        need(data, spec.prompt_field, (str, list, dict), "text or a chat")

    def validate_answer(self, spec: TextSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        text = obj(answer, "answer", {"text"})["text"]
        if not isinstance(text, str) or not text.strip():
            raise fail("answer.text", "must be non-empty text")
        if len(text) > MAX_TEXT_ANSWER:
            raise fail("answer.text", f"is longer than {MAX_TEXT_ANSWER} characters")
        return {"text": text}

    def gold_from_text(self, spec: TextSpec, value: str) -> Any:
        return {"text": value}

    def gold_matches(self, spec: TextSpec, answer: dict[str, Any], gold: dict[str, Any]) -> bool:
        return " ".join(answer["text"].split()) == " ".join(gold["text"].split())

    def aggregator(self, spec: TextSpec) -> Any:
        return text_quality.TextAggregator()

    def answer_score(self, spec: TextSpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        return text_quality.answer_score(answer, response)


TASK_TYPE = Text()
