"""The seven task types: their spec, the `data` each task needs, and answer validation.

Every check raises ``Invalid`` naming the field (``details.field``, a dotted path), so a
client learns exactly what to fix. Offsets of spans are code points of the text, which is
what Python's ``str`` indexes: Arabic, emoji and combining marks count one per code point.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo, field_validator

from qistas.errors import Invalid

Label = Annotated[str, Field(min_length=1, max_length=200)]
FieldName = Annotated[str, Field(min_length=1, max_length=100)]
MAX_TEXT_ANSWER = 100_000


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Labelled(_Spec):
    labels: list[Label] = Field(min_length=1, max_length=1000)

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be unique")
        return labels


class ClassificationSpec(_Labelled):
    type: Literal["classification"]
    multi: bool = False
    text_field: FieldName | None = None


class SpansSpec(_Labelled):
    type: Literal["spans"]
    text_field: FieldName = "text"


class BoxesSpec(_Labelled):
    type: Literal["boxes"]
    image_field: FieldName = "image"


class PairwiseSpec(_Spec):
    type: Literal["pairwise"]
    prompt_field: FieldName = "prompt"
    a_field: FieldName = "a"
    b_field: FieldName = "b"
    allow_tie: bool = True
    criteria: list[Label] = Field(default_factory=list, max_length=50)


class RankingSpec(_Spec):
    type: Literal["ranking"]
    prompt_field: FieldName = "prompt"
    responses_field: FieldName = "responses"


class RatingSpec(_Spec):
    type: Literal["rating"]
    min: int = 1
    max: int = 5
    prompt_field: FieldName | None = None

    @field_validator("max")
    @classmethod
    def _ordered(cls, value: int, info: ValidationInfo) -> int:
        if "min" in info.data and info.data["min"] >= value:
            raise ValueError("max must be above min")
        return value


class TextSpec(_Spec):
    type: Literal["text"]
    prompt_field: FieldName = "prompt"


TaskSpec = Annotated[
    ClassificationSpec | SpansSpec | BoxesSpec | PairwiseSpec | RankingSpec | RatingSpec | TextSpec,
    Field(discriminator="type"),
]
TASK_TYPES = ("classification", "spans", "boxes", "pairwise", "ranking", "rating", "text")
_spec_adapter: TypeAdapter[Any] = TypeAdapter(TaskSpec)


def parse_spec(raw: Any) -> Any:
    """Validate a project's task spec; return the typed spec."""
    try:
        return _spec_adapter.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = _spec_path(first["type"], list(first["loc"]))
        raise Invalid(f"{path}: {first['msg']}", details={"field": path}) from None


def _spec_path(error_type: str, loc: list[Any]) -> str:
    """The field a spec error is about, as the client wrote it (``task.labels``)."""
    if error_type in ("union_tag_invalid", "union_tag_not_found"):
        return "task.type"
    # A discriminated union puts the tag first (``classification.labels``): the client
    # never wrote it, so drop it.
    if loc and loc[0] in TASK_TYPES:
        loc = loc[1:]
    return ".".join(str(p) for p in ("task", *loc))


def spec_dict(spec: Any) -> dict[str, Any]:
    return spec.model_dump()


# --- data ---------------------------------------------------------------------------------


def _need(data: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if name not in data:
        raise Invalid(f"data.{name} is missing", details={"field": f"data.{name}"})
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise Invalid(f"data.{name} must be {what}", details={"field": f"data.{name}"})
    return value


def validate_data(spec: Any, data: Any) -> None:
    """Check that a task's data has what its type needs to be shown and answered."""
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object", details={"field": "data"})
    text_field = getattr(spec, "text_field", None)
    if text_field:
        _need(data, text_field, str, "a string")
    if isinstance(spec, BoxesSpec):
        _need(data, spec.image_field, str, "an image URL or path")
    elif isinstance(spec, PairwiseSpec):
        for name in (spec.prompt_field, spec.a_field, spec.b_field):
            _need(data, name, (str, list, dict), "text or a chat")
    elif isinstance(spec, RankingSpec):
        _need(data, spec.prompt_field, (str, list, dict), "text or a chat")
        responses = _need(data, spec.responses_field, list, "a list of responses")
        if not 2 <= len(responses) <= 50:
            raise Invalid(
                f"data.{spec.responses_field} must hold 2 to 50 responses",
                details={"field": f"data.{spec.responses_field}"},
            )
    elif isinstance(spec, RatingSpec | TextSpec) and spec.prompt_field:
        _need(data, spec.prompt_field, (str, list, dict), "text or a chat")


# --- answers ------------------------------------------------------------------------------


def _fail(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", details={"field": field})


def _obj(value: Any, field: str, keys: set[str], optional: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    if not isinstance(value, dict):
        raise _fail(field, "must be an object")
    missing = keys - value.keys()
    if missing:
        raise _fail(f"{field}.{sorted(missing)[0]}", "is missing")
    unknown = value.keys() - keys - optional
    if unknown:
        raise _fail(f"{field}.{sorted(unknown)[0]}", "is not a known field")
    return value


def _label(value: Any, field: str, labels: list[str]) -> str:
    if not isinstance(value, str) or value not in labels:
        raise _fail(field, f"unknown label {value!r}")
    return value


def _int(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(field, "must be an integer")
    return value


def _number(value: Any, field: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        raise _fail(field, "must be a number")
    return float(value)


def _choice(value: Any, field: str, allow_tie: bool) -> str:
    allowed = ("a", "b", "tie") if allow_tie else ("a", "b")
    if value not in allowed:
        raise _fail(field, f"must be one of {', '.join(allowed)}")
    return str(value)


def validate_answer(spec: Any, data: dict[str, Any], answer: Any) -> dict[str, Any]:
    """Validate an answer against the spec and the task's data; return it normalised."""
    if isinstance(spec, ClassificationSpec):
        if spec.multi:
            obj = _obj(answer, "answer", {"labels"})
            if not isinstance(obj["labels"], list):
                raise _fail("answer.labels", "must be a list")
            chosen = [_label(v, f"answer.labels.{i}", spec.labels) for i, v in enumerate(obj["labels"])]
            if len(set(chosen)) != len(chosen):
                raise _fail("answer.labels", "labels repeat")
            return {"labels": sorted(chosen, key=spec.labels.index)}
        obj = _obj(answer, "answer", {"label"})
        return {"label": _label(obj["label"], "answer.label", spec.labels)}
    if isinstance(spec, SpansSpec):
        text = data[spec.text_field]
        obj = _obj(answer, "answer", {"spans"})
        if not isinstance(obj["spans"], list):
            raise _fail("answer.spans", "must be a list")
        spans = []
        for i, raw in enumerate(obj["spans"]):
            f = f"answer.spans.{i}"
            span = _obj(raw, f, {"start", "end", "label"}, {"text"})
            start, end = _int(span["start"], f"{f}.start"), _int(span["end"], f"{f}.end")
            if not 0 <= start < end:
                raise _fail(f, "needs 0 <= start < end")
            if end > len(text):
                raise _fail(f"{f}.end", f"is past the end of the text ({len(text)} code points)")
            spans.append({"start": start, "end": end, "label": _label(span["label"], f"{f}.label", spec.labels)})
        spans.sort(key=lambda s: (s["start"], s["end"], s["label"]))
        return {"spans": spans}
    if isinstance(spec, BoxesSpec):
        obj = _obj(answer, "answer", {"boxes"})
        if not isinstance(obj["boxes"], list):
            raise _fail("answer.boxes", "must be a list")
        width, height = data.get("width"), data.get("height")
        boxes = []
        for i, raw in enumerate(obj["boxes"]):
            f = f"answer.boxes.{i}"
            box = _obj(raw, f, {"x", "y", "w", "h", "label"})
            x, y = _number(box["x"], f"{f}.x"), _number(box["y"], f"{f}.y")
            w, h = _number(box["w"], f"{f}.w"), _number(box["h"], f"{f}.h")
            if x < 0 or y < 0 or w <= 0 or h <= 0:
                raise _fail(f, "needs x, y >= 0 and w, h > 0")
            if isinstance(width, int | float) and x + w > width:
                raise _fail(f"{f}.w", f"goes past the image width ({width})")
            if isinstance(height, int | float) and y + h > height:
                raise _fail(f"{f}.h", f"goes past the image height ({height})")
            label = _label(box["label"], f"{f}.label", spec.labels)
            boxes.append({"x": x, "y": y, "w": w, "h": h, "label": label})
        return {"boxes": boxes}
    if isinstance(spec, PairwiseSpec):
        if spec.criteria:
            obj = _obj(answer, "answer", {"choice", "criteria"})
            per = _obj(obj["criteria"], "answer.criteria", set(spec.criteria))
            return {
                "choice": _choice(obj["choice"], "answer.choice", spec.allow_tie),
                "criteria": {c: _choice(per[c], f"answer.criteria.{c}", spec.allow_tie) for c in spec.criteria},
            }
        obj = _obj(answer, "answer", {"choice"})
        return {"choice": _choice(obj["choice"], "answer.choice", spec.allow_tie)}
    if isinstance(spec, RankingSpec):
        k = len(data[spec.responses_field])
        obj = _obj(answer, "answer", {"order"})
        order = obj["order"]
        if not isinstance(order, list) or any(not isinstance(i, int) or isinstance(i, bool) for i in order):
            raise _fail("answer.order", "must be a list of response indexes")
        if sorted(order) != list(range(k)):
            raise _fail("answer.order", f"must order each of the {k} responses exactly once (0..{k - 1})")
        return {"order": list(order)}
    if isinstance(spec, RatingSpec):
        obj = _obj(answer, "answer", {"rating"})
        rating = _int(obj["rating"], "answer.rating")
        if not spec.min <= rating <= spec.max:
            raise _fail("answer.rating", f"must be between {spec.min} and {spec.max}")
        return {"rating": rating}
    if isinstance(spec, TextSpec):
        obj = _obj(answer, "answer", {"text"})
        text = obj["text"]
        if not isinstance(text, str) or not text.strip():
            raise _fail("answer.text", "must be non-empty text")
        if len(text) > MAX_TEXT_ANSWER:
            raise _fail("answer.text", f"is longer than {MAX_TEXT_ANSWER} characters")
        return {"text": text}
    raise _fail("task.type", "unknown task type")  # pragma: no cover - parse_spec prevents it


def answer_key(answer: Any) -> str:
    """A canonical text of an answer, so equal answers vote together."""
    return json.dumps(answer, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
