"""Ranking: order a prompt's responses, best first: ``{"order": [i, ...]}``.

Exported as preference pairs: every better / worse pair of the consensus order.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations
from typing import Any, Literal

from qistas.domain.exportrecords import chunks, provenance, to_json
from qistas.domain.tasktypes.base import ExportFormat, FieldName, FormField, Records, Spec, TaskType, fail, need, obj
from qistas.errors import Invalid
from qistas.quality import ranking as ranking_quality

MAX_RESPONSES = 50


class RankingSpec(Spec):
    type: Literal["ranking"]
    prompt_field: FieldName = "prompt"
    responses_field: FieldName = "responses"


def preference(records: Records, spec: RankingSpec) -> Iterator[bytes]:
    """``{"prompt", "chosen", "rejected", ...}`` for every pair of the order (best first)."""
    for chunk in chunks(records()):
        lines = []
        for record in chunk:
            responses = record["data"][spec.responses_field]
            for better, worse in combinations(record["response"]["order"], 2):
                line = {"prompt": record["data"][spec.prompt_field], "chosen": responses[better],
                        "rejected": responses[worse], **provenance(record)}
                lines.append(to_json(line) + "\n")
        yield "".join(lines).encode()


class Ranking(TaskType[RankingSpec]):
    name = "ranking"
    spec_model = RankingSpec
    confidence = ("the expected share of response pairs the consensus order puts right, from the "
                  "reliability-weighted answers (each annotator a Mallows ranker, weighted Borda order)")
    form_fields = (FormField("prompt_field", "text", "new.prompt_field"),
                   FormField("responses_field", "text", "new.responses_field"))
    export_formats = {"preference": ExportFormat("application/x-ndjson", "jsonl", preference)}

    def validate_data(self, spec: RankingSpec, data: dict[str, Any]) -> None:
        need(data, spec.prompt_field, (str, list, dict), "text or a chat")
        responses = need(data, spec.responses_field, list, "a list of responses")
        if not 2 <= len(responses) <= MAX_RESPONSES:
            raise Invalid(f"data.{spec.responses_field} must hold 2 to {MAX_RESPONSES} responses",
                          details={"field": f"data.{spec.responses_field}"})

    def validate_answer(self, spec: RankingSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        k = len(data[spec.responses_field])
        order = obj(answer, "answer", {"order"})["order"]
        if isinstance(order, list) and len(order) > k:
            raise fail("answer.order", f"must order each of the {k} responses exactly once (0..{k - 1})")
        if not isinstance(order, list) or any(not isinstance(i, int) or isinstance(i, bool) for i in order):
            raise fail("answer.order", "must be a list of response indexes")
        if sorted(order) != list(range(k)):
            raise fail("answer.order", f"must order each of the {k} responses exactly once (0..{k - 1})")
        return {"order": list(order)}

    def aggregator(self, spec: RankingSpec) -> Any:
        # The reliability-weighted Borda order: on annotators who swap neighbouring responses,
        # local Kemenization loses seven points of Kendall's tau to it
        # (benchmarks/quality_types.py prints both).
        return ranking_quality.RankingAggregator(method="borda")

    def context(self, spec: RankingSpec, data: dict[str, Any], gold: Any | None) -> Any:
        return {"k": len(data.get(spec.responses_field, []))}

    def answer_score(self, spec: RankingSpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        return ranking_quality.answer_score(answer, response)


TASK_TYPE = Ranking()
