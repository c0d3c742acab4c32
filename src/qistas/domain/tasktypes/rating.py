"""Rating: a whole number on the project's scale, ``{"rating": n}`` with ``min <= n <= max``.

Gold matching accepts a rating within ``gold_tolerance`` of the gold rating.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from qistas.domain.tasktypes.base import FieldName, FormField, Spec, TaskType, fail, integer, max_above_min, need, obj
from qistas.quality import ratings as rating_quality

#: The widest scale: every point is a button in the workspace.
MAX_POINTS = 1001
#: The ends of a scale lie within -MAX_END..MAX_END.
MAX_END = 1_000_000_000


class RatingSpec(Spec):
    type: Literal["rating"]
    min: int = Field(1, ge=-MAX_END, le=MAX_END)
    max: int = Field(5, ge=-MAX_END, le=MAX_END)
    prompt_field: FieldName | None = None
    gold_tolerance: int = Field(0, ge=0, le=MAX_POINTS)

    @field_validator("max")
    @classmethod
    def _ordered(cls, value: int, info: ValidationInfo) -> int:
        max_above_min(value, info)
        if "min" in info.data and value - info.data["min"] + 1 > MAX_POINTS:
            raise PydanticCustomError("scale_too_long", "a scale has at most {points} points",
                                      {"points": MAX_POINTS})
        return value


class Rating(TaskType[RatingSpec]):
    name = "rating"
    spec_model = RatingSpec
    confidence = ("one minus the width of the estimate's 90% interval over the width of the scale; the "
                  "estimate (noise-weighted per annotator) and its interval are in the result's details")
    form_fields = (
        FormField("min", "int", "new.rating_min", 1),
        FormField("max", "int", "new.rating_max", 5),
        FormField("prompt_field", "text", "new.prompt_field"),
    )

    def validate_data(self, spec: RatingSpec, data: dict[str, Any]) -> None:
        if spec.prompt_field:
            need(data, spec.prompt_field, (str, list, dict), "text or a chat")

    def validate_answer(self, spec: RatingSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        rating = integer(obj(answer, "answer", {"rating"})["rating"], "answer.rating")
        if not spec.min <= rating <= spec.max:
            raise fail("answer.rating", f"must be between {spec.min} and {spec.max}")
        return {"rating": rating}

    def gold_from_text(self, spec: RatingSpec, value: str) -> Any:
        try:
            return {"rating": int(value)}
        except ValueError:
            return value

    def gold_matches(self, spec: RatingSpec, answer: dict[str, Any], gold: dict[str, Any]) -> bool:
        return abs(answer["rating"] - gold["rating"]) <= spec.gold_tolerance

    def aggregator(self, spec: RatingSpec) -> Any:
        return rating_quality.RatingConsensus()

    def context(self, spec: RatingSpec, data: dict[str, Any], gold: Any | None) -> Any:
        return {"min": spec.min, "max": spec.max}

    def answer_score(self, spec: RatingSpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        return rating_quality.answer_score(answer, response, {"min": spec.min, "max": spec.max})

    def categories(self, spec: RatingSpec) -> list[str]:
        return [str(v) for v in range(spec.min, spec.max + 1)]

    def category(self, spec: RatingSpec, answer: Any) -> str | None:
        return str(answer["rating"]) if isinstance(answer, dict) and "rating" in answer else None


TASK_TYPE = Rating()
