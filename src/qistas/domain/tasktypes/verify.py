"""Verify a candidate (a generated question, an instruction's response): accept, fix or reject.

Data: ``candidate`` (text) and optionally ``prompt`` (text or a chat it answers). Answer:
``{"verdict": "accept"}``, ``{"verdict": "fix", "text": "..."}`` or ``{"verdict": "reject"}``;
a fix that leaves the candidate as it was (white space aside) is an accept.

Gold matching: the same verdict, and for a fix a text whose word error rate against the gold
text is at most ``1 - gold_text_min``. Exported as SFT (``chat``: accepted and fixed items,
``{"messages": [user prompt, assistant text]}``, or ``{"text"}`` without a prompt) and as
preference pairs (``preference``: each fix over the candidate it fixed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from qistas.domain.exportrecords import chunks, provenance, to_json
from qistas.domain.tasktypes.base import ExportFormat, FieldName, FormField, Records, Spec, TaskType, fail, need, obj
from qistas.quality import verify as verify_quality

MAX_TEXT = 100_000
VERDICTS = ("accept", "fix", "reject")


class VerifySpec(Spec):
    type: Literal["verify"]
    prompt_field: FieldName = "prompt"
    candidate_field: FieldName = "candidate"
    gold_text_min: float = Field(0.8, ge=0.0, le=1.0)


def final_text(record: dict[str, Any], spec: VerifySpec) -> str | None:
    """The text people kept: the candidate when accepted, the fix, or None when rejected."""
    response = record["response"]
    if response["verdict"] == "accept":
        return str(record["data"][spec.candidate_field])
    return response.get("text") if response["verdict"] == "fix" else None


def _prompt_messages(prompt: Any) -> list[dict[str, Any]]:
    if isinstance(prompt, list):
        return list(prompt)
    return [{"role": "user", "content": prompt if isinstance(prompt, str) else to_json(prompt)}]


def sft(records: Records, spec: VerifySpec) -> Iterator[bytes]:
    """One line per accepted or fixed item; rejected ones are left out."""
    for chunk in chunks(records()):
        lines = []
        for record in chunk:
            text = final_text(record, spec)
            if text is None:
                continue
            prompt = record["data"].get(spec.prompt_field)
            body: dict[str, Any] = {"text": text} if prompt is None else {
                "messages": [*_prompt_messages(prompt), {"role": "assistant", "content": text}]}
            lines.append(to_json({**body, "verdict": record["response"]["verdict"], **provenance(record)}) + "\n")
        yield "".join(lines).encode()


def preference(records: Records, spec: VerifySpec) -> Iterator[bytes]:
    """``{"prompt", "chosen": fix, "rejected": candidate, ...}`` per fixed item that has a prompt."""
    for chunk in chunks(records()):
        lines = []
        for record in chunk:
            prompt = record["data"].get(spec.prompt_field)
            if record["response"]["verdict"] != "fix" or prompt is None:
                continue
            line = {"prompt": prompt, "chosen": record["response"]["text"],
                    "rejected": record["data"][spec.candidate_field], **provenance(record)}
            lines.append(to_json(line) + "\n")
        yield "".join(lines).encode()


class Verify(TaskType[VerifySpec]):
    name = "verify"
    spec_model = VerifySpec
    confidence = ("the share of answers on the winning side (keep or reject), times the agreement of the kept "
                  "texts when the item is kept")
    form_fields = (FormField("prompt_field", "text", "new.prompt_field"),
                   FormField("candidate_field", "text", "new.candidate_field"))
    export_formats = {"chat": ExportFormat("application/x-ndjson", "jsonl", sft),
                      "preference": ExportFormat("application/x-ndjson", "jsonl", preference)}

    def validate_data(self, spec: VerifySpec, data: dict[str, Any]) -> None:
        need(data, spec.candidate_field, str, "text")
        if spec.prompt_field in data:
            need(data, spec.prompt_field, (str, list, dict), "text or a chat")

    def validate_answer(self, spec: VerifySpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        verdict = obj(answer, "answer", {"verdict"}, frozenset({"text"})).get("verdict")
        if verdict not in VERDICTS:
            raise fail("answer.verdict", f"must be one of {', '.join(VERDICTS)}")
        if verdict != "fix":
            if "text" in answer:
                raise fail("answer.text", "is only given with a fix")
            return {"verdict": verdict}
        text = answer.get("text")
        if not isinstance(text, str) or not text.strip():
            raise fail("answer.text", "must be non-empty text")
        if len(text) > MAX_TEXT:
            raise fail("answer.text", f"is longer than {MAX_TEXT} characters")
        if " ".join(text.split()) == " ".join(str(data[spec.candidate_field]).split()):
            return {"verdict": "accept"}
        return {"verdict": "fix", "text": text}

    def gold_from_text(self, spec: VerifySpec, value: str) -> Any:
        return {"verdict": value} if value in ("accept", "reject") else {"verdict": "fix", "text": value}

    def gold_matches(self, spec: VerifySpec, answer: dict[str, Any], gold: dict[str, Any]) -> bool:
        if answer["verdict"] != gold["verdict"]:
            return False
        if gold["verdict"] != "fix":
            return True
        return verify_quality.text_score({"text": answer["text"]}, {"text": gold["text"]}) >= spec.gold_text_min

    def aggregator(self, spec: VerifySpec) -> Any:
        return verify_quality.VerifyAggregator()

    def context(self, spec: VerifySpec, data: dict[str, Any], gold: Any | None) -> Any:
        return {"candidate": str(data.get(spec.candidate_field, ""))}

    def answer_score(self, spec: VerifySpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        return verify_quality.answer_score(answer, response, self.context(spec, data, None))

    def categories(self, spec: VerifySpec) -> list[str]:
        return list(VERDICTS)

    def category(self, spec: VerifySpec, answer: Any) -> str | None:
        return answer.get("verdict") if isinstance(answer, dict) else None


TASK_TYPE = Verify()
