"""Multi-turn chat: rate each assistant turn of a conversation, choose between candidate next
turns, rewrite the final turn.

Data: ``messages`` (``[{"role": "system" | "user" | "assistant", "content": str}, ...]``) and,
optionally, ``candidates`` (2 to 10 candidate next assistant turns, as text). Answer:
``{"ratings": [n per assistant turn], "choice": i, "rewrite": "..."}`` -- ``choice`` when the
task has candidates; ``rewrite`` (with the spec's ``rewrite``) of the chosen candidate, or of
the conversation's last turn when it is the assistant's and there are no candidates.

With ``criteria`` (a rubric: ``[{"name", "label"?, "min"?, "max"?}, ...]``, each on its own
scale, the spec's ``min``/``max`` where it names none), each assistant turn is rated once
per criterion: ``{"ratings": [{name: n, ...} per assistant turn], ...}``.

Gold matching: every rating (every criterion's) within ``gold_tolerance``, the same choice, and a rewrite whose
word error rate against the gold one is at most ``1 - gold_rewrite_min``. Exported as chat
SFT (``chat``: the conversation with the chosen and rewritten turn) and preference pairs
(``preference``: the chosen candidate over each other one, the rewrite over the turn it
rewrote); with criteria both carry ``rubric``, each rated turn's per-criterion consensus and
confidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from qistas.domain.exportrecords import chunks, provenance, to_json
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
    integer,
    items,
    max_above_min,
    need,
    obj,
)
from qistas.errors import Invalid
from qistas.quality import chat as chat_quality

MAX_TURNS = 200
MAX_CANDIDATES = 10
MAX_REWRITE = 100_000
ROLES = ("system", "user", "assistant")
MAX_SCALE = 100
MAX_CRITERIA = 10
#: A criterion's name: a key of every answer's per-turn ratings (no dots: error paths are dotted).
CRITERION_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


class Criterion(BaseModel):
    """One criterion of a rubric: ``name`` (the key in answers), ``label`` (what people read), its scale."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=CRITERION_NAME)
    label: Label | None = None
    min: int = Field(1, ge=-MAX_SCALE, le=MAX_SCALE)
    max: int = Field(5, ge=-MAX_SCALE, le=MAX_SCALE)

    _ordered = field_validator("max")(max_above_min)

    @property
    def shown(self) -> str:
        return self.label or self.name


def _criterion_of(text: str) -> dict[str, str]:
    name, colon, label = text.partition(":")
    return {"name": name.strip(), **({"label": label.strip()} if colon and label.strip() else {})}


class ChatSpec(Spec):
    type: Literal["chat"]
    messages_field: FieldName = "messages"
    candidates_field: FieldName = "candidates"
    min: int = Field(1, ge=-MAX_SCALE, le=MAX_SCALE)
    max: int = Field(5, ge=-MAX_SCALE, le=MAX_SCALE)
    rewrite: bool = True
    gold_tolerance: int = Field(0, ge=0, le=2 * MAX_SCALE)
    gold_rewrite_min: float = Field(0.8, ge=0.0, le=1.0)
    criteria: list[Criterion] | None = Field(None, min_length=1, max_length=MAX_CRITERIA)

    _ordered = field_validator("max")(max_above_min)

    @field_validator("criteria", mode="before")
    @classmethod
    def _inherit_scale(cls, value: Any, info: ValidationInfo) -> Any:
        """A criterion given as text is ``name`` or ``name: label`` (a line of the console's form);
        one without its own ``min``/``max`` takes the spec's (when those are valid)."""
        if not isinstance(value, list):
            return value
        value = [_criterion_of(c) if isinstance(c, str) else c for c in value]
        scale = {k: info.data[k] for k in ("min", "max") if k in info.data}
        if len(scale) < 2:
            return value
        return [{**scale, **c} if isinstance(c, dict) else c for c in value]

    @field_validator("criteria")
    @classmethod
    def _distinct(cls, criteria: list[Criterion] | None) -> list[Criterion] | None:
        if criteria is None:
            return None
        names = [c.name for c in criteria]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise PydanticCustomError("criteria_not_unique", "items {first} and {item} are both named '{name}'; "
                                          "criterion names must be unique",
                                          {"first": names.index(name), "item": i, "name": name})
        distinct_labels([c.shown for c in criteria])  # people tell the rows apart by their labels
        return criteria

    @model_serializer(mode="wrap")
    def _without_absent_criteria(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A spec without a rubric is stored and shown exactly as before rubrics existed.
        out: dict[str, Any] = handler(self)
        if out.get("criteria") is None:
            out.pop("criteria", None)
        return out

    def scales(self) -> dict[str, dict[str, int]]:
        """Each criterion's scale by name (empty without a rubric)."""
        return {c.name: {"min": c.min, "max": c.max} for c in self.criteria or ()}


def conversation(data: dict[str, Any], spec: ChatSpec) -> list[dict[str, str]]:
    return list(data[spec.messages_field])


def candidates(data: dict[str, Any], spec: ChatSpec) -> list[str]:
    found = data.get(spec.candidates_field)
    return list(found) if isinstance(found, list) else []


def rated_turns(data: dict[str, Any], spec: ChatSpec) -> int:
    """How many turns an answer rates: the conversation's assistant turns."""
    return sum(1 for m in conversation(data, spec) if m["role"] == "assistant")


def rewritten(data: dict[str, Any], spec: ChatSpec, choice: int | None) -> str | None:
    """The text a rewrite replaces: the chosen candidate, else the last turn when it is the assistant's."""
    options = candidates(data, spec)
    if options:
        return options[choice] if choice is not None else None
    messages = conversation(data, spec)
    return messages[-1]["content"] if messages[-1]["role"] == "assistant" else None


def wants_rewrite(data: dict[str, Any], spec: ChatSpec) -> bool:
    messages = conversation(data, spec)
    return spec.rewrite and (bool(candidates(data, spec)) or messages[-1]["role"] == "assistant")


def _final(record: dict[str, Any], spec: ChatSpec) -> tuple[list[dict[str, str]], str | None, str | None]:
    """(the conversation before the decided turn, the decided turn, the text it replaced)."""
    data, response = record["data"], record["response"]
    messages = conversation(data, spec)
    options = candidates(data, spec)
    choice = response.get("choice")
    original = rewritten(data, spec, choice)
    if options:
        return messages, response.get("rewrite", original), original
    if messages[-1]["role"] == "assistant":
        return messages[:-1], response.get("rewrite", messages[-1]["content"]), original
    return messages, None, None


def rubric(record: dict[str, Any], spec: ChatSpec) -> dict[str, Any]:
    """``{"rubric": [{"message": i, "ratings": {name: n}, "confidence": {name: c}}, ...]}``: each rated
    turn's consensus per criterion, ``message`` its index in the task's conversation (as rated,
    before any rewrite); a confidence from the result's details, else (a reviewer's correction)
    the result's. Empty without criteria, so the lines stay as they were."""
    if not spec.criteria:
        return {}
    turns = [i for i, m in enumerate(conversation(record["data"], spec)) if m["role"] == "assistant"]
    ratings = record["response"].get("ratings", [])
    found = (record.get("details") or {}).get("ratings_confidence")
    sure = found if isinstance(found, list) and len(found) == len(ratings) else None
    rows = []
    for j, (index, given) in enumerate(zip(turns, ratings, strict=False)):
        mine = sure[j] if sure is not None and isinstance(sure[j], dict) else {}
        rows.append({"message": index, "ratings": given,
                     "confidence": {c.name: mine.get(c.name, record.get("confidence")) for c in spec.criteria}})
    return {"rubric": rows}


def sft(records: Records, spec: ChatSpec) -> Iterator[bytes]:
    """``{"messages": [...]}`` per task: the conversation ending with the chosen, rewritten turn
    (with criteria, and its ``rubric``)."""
    for chunk in chunks(records()):
        lines = []
        for record in chunk:
            before, final, _ = _final(record, spec)
            messages = [*before, {"role": "assistant", "content": final}] if final is not None else before
            lines.append(to_json({"messages": messages, **rubric(record, spec), **provenance(record)}) + "\n")
        yield "".join(lines).encode()


def preference(records: Records, spec: ChatSpec) -> Iterator[bytes]:
    """``{"prompt": [messages], "chosen": [turn], "rejected": [turn], ...}`` (TRL's conversational
    form): the chosen candidate over each other one, the rewrite over the turn it rewrote (with
    criteria, each pair carries its task's ``rubric``)."""
    for chunk in chunks(records()):
        lines = []
        for record in chunk:
            data, response = record["data"], record["response"]
            before, final, original = _final(record, spec)
            pairs = []
            scored = rubric(record, spec)
            options = candidates(data, spec)
            if options and "choice" in response:
                chosen = options[response["choice"]]
                pairs += [(chosen, other) for i, other in enumerate(options) if i != response["choice"]]
            if final is not None and original is not None and " ".join(final.split()) != " ".join(original.split()):
                pairs.append((final, original))
            for chosen, rejected in pairs:
                line = {"prompt": before, "chosen": [{"role": "assistant", "content": chosen}],
                        "rejected": [{"role": "assistant", "content": rejected}], **scored, **provenance(record)}
                lines.append(to_json(line) + "\n")
        yield "".join(lines).encode()


def _rated(spec: ChatSpec, value: Any, where: str) -> Any:
    """One turn's rating: a number on the spec's scale, or with criteria one per criterion."""
    if not spec.criteria:
        rating = integer(value, where)
        if not spec.min <= rating <= spec.max:
            raise fail(where, f"must be between {spec.min} and {spec.max}")
        return rating
    given = obj(value, where, {c.name for c in spec.criteria})
    out = {}
    for c in spec.criteria:
        rating = integer(given[c.name], f"{where}.{c.name}")
        if not c.min <= rating <= c.max:
            raise fail(f"{where}.{c.name}", f"must be between {c.min} and {c.max}")
        out[c.name] = rating
    return out


class Chat(TaskType[ChatSpec]):
    name = "chat"
    spec_model = ChatSpec
    confidence = ("the lowest confidence of the answer's parts: each turn's rating (1 - interval width / scale; "
                  "with criteria, each criterion's rating of each turn), "
                  "the share of votes of the chosen candidate, the agreement of the rewrites")
    form_fields = (
        FormField("messages_field", "text", "new.messages_field"),
        FormField("candidates_field", "text", "new.candidates_field"),
        FormField("min", "int", "new.rating_min", 1),
        FormField("max", "int", "new.rating_max", 5),
        FormField("criteria", "lines", "new.criteria", hint="new.criteria_hint"),
        FormField("rewrite", "bool", "new.rewrite", True),
    )
    export_formats = {"chat": ExportFormat("application/x-ndjson", "jsonl", sft),
                      "preference": ExportFormat("application/x-ndjson", "jsonl", preference)}

    def validate_data(self, spec: ChatSpec, data: dict[str, Any]) -> None:
        where = f"data.{spec.messages_field}"
        messages = need(data, spec.messages_field, list, "a list of messages")
        if len(messages) > MAX_TURNS:
            raise Invalid(f"{where} holds at most {MAX_TURNS} messages", details={"field": where})
        for i, message in enumerate(messages):
            turn = obj(message, f"{where}.{i}", {"role", "content"})
            if turn["role"] not in ROLES:
                raise fail(f"{where}.{i}.role", f"must be one of {', '.join(ROLES)}")
            if not isinstance(turn["content"], str):
                raise fail(f"{where}.{i}.content", "must be text")
        if spec.candidates_field in data:
            found = items(data[spec.candidates_field], f"data.{spec.candidates_field}")
            if not 2 <= len(found) <= MAX_CANDIDATES or not all(isinstance(c, str) and c.strip() for c in found):
                raise fail(f"data.{spec.candidates_field}",
                           f"must hold 2 to {MAX_CANDIDATES} candidate turns, each non-empty text")

    def validate_answer(self, spec: ChatSpec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        options = candidates(data, spec)
        keys = {"ratings"} | ({"choice"} if options else set()) | ({"rewrite"} if wants_rewrite(data, spec) else set())
        given = obj(answer, "answer", keys)
        turns = rated_turns(data, spec)
        ratings = at_most(items(given["ratings"], "answer.ratings"), "answer.ratings", turns, "ratings")
        if len(ratings) != turns:
            raise fail("answer.ratings", f"must rate each of the {turns} assistant turns")
        out: dict[str, Any] = {"ratings": [_rated(spec, v, f"answer.ratings.{i}") for i, v in enumerate(ratings)]}
        if options:
            choice = integer(given["choice"], "answer.choice")
            if not 0 <= choice < len(options):
                raise fail("answer.choice", f"must be a candidate's index, 0..{len(options) - 1}")
            out["choice"] = choice
        if "rewrite" in keys:
            text = given["rewrite"]
            if not isinstance(text, str) or not text.strip():
                raise fail("answer.rewrite", "must be non-empty text")
            if len(text) > MAX_REWRITE:
                raise fail("answer.rewrite", f"is longer than {MAX_REWRITE} characters")
            out["rewrite"] = text
        return out

    def gold_matches(self, spec: ChatSpec, answer: dict[str, Any], gold: dict[str, Any]) -> bool:
        if spec.criteria:
            ratings = all(abs(a[c.name] - g[c.name]) <= spec.gold_tolerance
                          for a, g in zip(answer["ratings"], gold["ratings"], strict=False) for c in spec.criteria)
        else:
            ratings = all(abs(a - g) <= spec.gold_tolerance
                          for a, g in zip(answer["ratings"], gold["ratings"], strict=False))
        choice = answer.get("choice") == gold.get("choice")
        rewrite = True
        if isinstance(gold.get("rewrite"), str) and isinstance(answer.get("rewrite"), str):
            score = chat_quality.text_score({"text": answer["rewrite"]}, {"text": gold["rewrite"]})
            rewrite = score >= spec.gold_rewrite_min
        return ratings and choice and rewrite

    def aggregator(self, spec: ChatSpec) -> Any:
        return chat_quality.ChatAggregator()

    def context(self, spec: ChatSpec, data: dict[str, Any], gold: Any | None) -> Any:
        scale: dict[str, Any] = {"min": spec.min, "max": spec.max}
        if spec.criteria:
            scale["criteria"] = spec.scales()
        return scale

    def answer_score(self, spec: ChatSpec, data: dict[str, Any], answer: Any, response: Any) -> float:
        return chat_quality.answer_score(answer, response, self.context(spec, data, None))


TASK_TYPE = Chat()
