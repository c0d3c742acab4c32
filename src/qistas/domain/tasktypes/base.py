"""What every task type provides, and the small checks their validators share.

A task type is one module of this package holding one :class:`TaskType` subclass (see
``docs/task-types.md``). It owns its typed spec, the ``data`` a task needs, answer
validation, gold matching with a tolerance, aggregation (through a ``qistas.quality``
aggregator), the per-answer score used for annotator reliability, what its confidence
means, its report categories and its export formats. Nothing outside the module knows the
type by name.

Every check raises ``Invalid`` naming the field (``details.field``, a dotted path).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

import regex
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from qistas.errors import Invalid
from qistas.quality.structured import TaskResult, exact_match_score

#: A string in a task's data, and all of a task's strings together, in characters: an
#: annotator's browser lays the whole task out at once.
MAX_DATA_STRING = 200_000
MAX_DATA_TEXT = 1_000_000
#: An answer's JSON body; each type bounds its elements too (MAX_BOXES, MAX_SPANS ...).
MAX_ANSWER_BYTES = 1024 * 1024

Label = Annotated[str, Field(min_length=1, max_length=200)]
FieldName = Annotated[str, Field(min_length=1, max_length=100)]
Records = Callable[[], Iterator[dict[str, Any]]]


class Spec(BaseModel):
    """A project's task spec: ``type`` plus what the type needs. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str


# Scripts a label may mix with Latin (UTS #39 "moderately restrictive": Latin plus one other
# script, except Cyrillic and Greek, whose letters pass for Latin ones); Han, Hiragana,
# Katakana, Hangul and Bopomofo mix as Japanese, Chinese and Korean text does.
_SCRIPT_LETTER = regex.compile(r"[\p{L}\p{M}\p{N}]")
_CJK = frozenset({"Han", "Hiragana", "Katakana", "Hangul", "Bopomofo"})
_LOOKALIKE = frozenset({"Cyrillic", "Greek"})
_SCRIPTS = ("Latin", "Cyrillic", "Greek", "Arabic", "Hebrew", "Armenian", "Georgian", "Devanagari", "Bengali",
            "Gurmukhi", "Gujarati", "Tamil", "Telugu", "Kannada", "Malayalam", "Sinhala", "Thai", "Lao", "Tibetan",
            "Myanmar", "Khmer", "Ethiopic", "Syriac", "Thaana", "Mongolian", *sorted(_CJK))
_SCRIPT_OF = [(name, regex.compile(rf"\p{{Script={name}}}")) for name in _SCRIPTS]


# Cyrillic and Greek letters drawn like Latin ones (from UTS #39's confusables, the letters
# whose glyphs are the same in common fonts): a whole-Cyrillic "рос" looks like "poc".
_LATIN_LOOKALIKES = str.maketrans(
    "аеорсуххіјѕԁԛԝһӏАВЕКМНОРСТУХЅІЈԜ" "οικνΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxxijsdqwhlABEKMHOPCTYXSIJW" "oikvABEZHIKMNOPTYX",
)


def label_key(value: str) -> str:
    """What a label looks like: NFKC, without format characters (zero-width spaces, joiners,
    bidi controls), Cyrillic and Greek look-alikes read as the Latin letters they resemble.
    Two labels with one key cannot be told apart on screen."""
    visible = "".join(c for c in unicodedata.normalize("NFKC", value) if unicodedata.category(c) != "Cf")
    return visible.translate(_LATIN_LOOKALIKES)


def _scripts(value: str) -> set[str]:
    found = set()
    for char in _SCRIPT_LETTER.findall(value):
        name = next((n for n, pattern in _SCRIPT_OF if pattern.match(char)), None)
        if name is not None:
            found.add(name)
        elif regex.match(r"[\p{Script=Common}\p{Script=Inherited}]", char) is None:
            found.add(f"U+{ord(char):04X}")  # a script not listed above: mixes with nothing
    return found


def _mixes_scripts(value: str) -> bool:
    scripts = _scripts(value)
    if len(scripts) <= 1 or scripts <= _CJK | {"Latin"}:
        return False
    others = scripts - {"Latin"}
    return "Latin" not in scripts or len(others) > 1 or bool(others & _LOOKALIKE)


def distinct_labels(labels: list[str]) -> list[str]:
    """Labels people can tell apart: none mixes look-alike scripts, no two look the same."""
    seen: dict[str, int] = {}
    for i, value in enumerate(labels):
        if _mixes_scripts(unicodedata.normalize("NFKC", value)):
            raise PydanticCustomError(
                "label_mixed_scripts", "'{label}' (item {item}) mixes scripts whose letters look alike; write each "
                "label in one script (Latin may join one other, except Cyrillic or Greek)", {"label": value, "item": i})
        key = label_key(value)
        if key in seen:
            raise PydanticCustomError(
                "labels_not_unique", "items {first} and {item} ('{first_label}' and '{label}') look the same "
                "(equal after NFKC normalisation, without invisible characters, with look-alike letters read as "
                "Latin); labels must be unique",
                {"first": seen[key], "item": i, "first_label": labels[seen[key]], "label": value})
        seen[key] = i
    return labels


def max_above_min(value: int, info: ValidationInfo) -> int:
    """A scale's ``max``, checked after its ``min`` (a field validator of the specs with a scale)."""
    if "min" in info.data and info.data["min"] >= value:
        raise PydanticCustomError("scale_order", "max must be above min")
    return value


class LabelledSpec(Spec):
    labels: list[Label] = Field(min_length=1, max_length=1000)

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        return distinct_labels(labels)


S = TypeVar("S", bound=Spec)


@dataclass(frozen=True)
class FormField:
    """One input of the console's new-project form, for one key of the spec.

    ``kind``: ``lines`` (a list, one item per line), ``text``, ``int``, ``bool``.
    ``label`` is the i18n key of its caption, ``hint`` of a placeholder that says how to fill it.
    """

    key: str
    kind: Literal["lines", "text", "int", "bool"]
    label: str
    default: Any = None
    hint: str | None = None


@dataclass(frozen=True)
class ExportFormat:
    """A format only this type can be exported to: ``render(records, spec)`` yields bytes."""

    media_type: str
    extension: str
    render: Callable[[Records, Any], Iterator[bytes]]


class TaskType(Generic[S]):
    """Base class of a task type. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    spec_model: ClassVar[type[Spec]]
    #: What ``confidence`` means for this type, in one sentence (shown in docs and reports).
    confidence: ClassVar[str]
    form_fields: ClassVar[tuple[FormField, ...]] = ()
    export_formats: ClassVar[dict[str, ExportFormat]] = {}

    # --- tasks and answers ---------------------------------------------------------------

    def validate_data(self, spec: S, data: dict[str, Any]) -> None:
        """Check that a task's data has what the type needs to be shown and answered."""

    def media_fields(self, spec: S) -> tuple[str, ...]:
        """The fields of a task's data that name a media file (imported with the tasks, see
        ``docs/media.md``); an image's ``width`` and ``height`` are written beside them."""
        return ()

    def validate_answer(self, spec: S, data: dict[str, Any], answer: Any) -> dict[str, Any]:
        """Validate an answer against the spec and the task's data; return it normalised."""
        raise NotImplementedError

    def gold_from_text(self, spec: S, value: str) -> Any:
        """The gold answer a CSV cell holds (a bare label, for the types that have one)."""
        return value

    def gold_matches(self, spec: S, answer: dict[str, Any], gold: dict[str, Any]) -> bool:
        """Whether a normalised answer agrees with the gold answer (exact by default)."""
        return bool(exact_match_score(answer, gold))

    # --- aggregation ---------------------------------------------------------------------

    def aggregator(self, spec: S) -> Any:
        """A new ``qistas.quality`` aggregator for this spec (see ``quality/structured.py``)."""
        raise NotImplementedError

    def context(self, spec: S, data: dict[str, Any], gold: Any | None) -> Any:
        """What the aggregator needs of one task besides its answers (None by default)."""
        return None

    def weighs_gold(self, spec: S) -> bool:
        """Whether, before the first fit, annotators are weighed by their gold accuracy
        (``prior_params``); the gold counts are then read after each answer."""
        return False

    def prior_params(self, spec: S, accuracies: Sequence[float]) -> dict[str, Any]:
        """A worker model from each annotator's gold accuracy (for types that ``weighs_gold``)."""
        raise NotImplementedError

    def aggregate(self, spec: S, data: dict[str, Any], answers: Sequence[tuple[int, Any]],
                  params: dict[str, Any] | None) -> TaskResult:
        """The consensus of one task's answers: ``(worker index, answer)`` pairs, -1 = unknown worker."""
        estimator = self.aggregator(spec)
        if params is not None:
            estimator.load_params(params)
        return estimator.aggregate(list(answers), self.context(spec, data, None))

    def answer_score(self, spec: S, data: dict[str, Any], answer: Any, response: Any) -> float:
        """How well one answer agrees with the task's response, in [0, 1] (reliability reports)."""
        return exact_match_score(answer, plain_response(response))

    # --- reports -------------------------------------------------------------------------

    def categories(self, spec: S) -> list[str]:
        """The categories of the console's confusion matrix (empty: the type has none)."""
        return []

    def category(self, spec: S, answer: Any) -> str | None:
        """The category of one answer or response, if the type has categories."""
        return None


def plain_response(response: Any) -> Any:
    """A response without the per-part confidences aggregation adds (to compare with answers)."""
    if isinstance(response, dict):
        return {k: plain_response(v) for k, v in response.items() if k != "confidence"}
    if isinstance(response, list):
        return [plain_response(v) for v in response]
    return response


# --- checks shared by the validators ---------------------------------------------------------


def fail(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", details={"field": field})


def need(data: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if name not in data:
        raise Invalid(f"data.{name} is missing", details={"field": f"data.{name}"})
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise Invalid(f"data.{name} must be {what}", details={"field": f"data.{name}"})
    if (isinstance(value, str) and not value.strip()) or (isinstance(value, list | dict) and not value):
        # An empty cell of a CSV would otherwise be served as a blank task.
        raise Invalid(f"data.{name} is empty", details={"field": f"data.{name}"})
    return value


def obj(value: Any, field: str, keys: set[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(field, "must be an object")
    missing = keys - value.keys()
    if missing:
        raise fail(f"{field}.{sorted(missing)[0]}", "is missing")
    unknown = value.keys() - keys - optional
    if unknown:
        raise fail(f"{field}.{sorted(unknown)[0]}", "is not a known field")
    return value


def items(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise fail(field, "must be a list")
    return value


def label(value: Any, field: str, labels: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in labels:
        raise fail(field, f"unknown label {value!r}")
    return value


def integer(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise fail(field, "must be an integer")
    return value


def number(value: Any, field: str, *, low: float, high: float) -> float:
    """A finite number within ``low..high`` (JSON allows neither NaN nor infinities; Python reads them)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise fail(field, "must be a number")
    if not (isinstance(value, int) or math.isfinite(value)) or not low <= value <= high:
        raise fail(field, f"must be a finite number between {low:g} and {high:g}")
    return float(value)


def at_most(values: list[Any], field: str, limit: int, what: str) -> list[Any]:
    """``values``, unless there are more than ``limit`` of them (checked before any is looked at)."""
    if len(values) > limit:
        raise fail(field, f"has {len(values)} {what}; an answer holds at most {limit}")
    return values


def bounded_data(data: Any, field: str = "data") -> None:
    """Every string of a task's data (keys too) within MAX_DATA_STRING, all within MAX_DATA_TEXT."""
    total = 0
    stack: list[tuple[Any, str]] = [(data, field)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            stack.extend((item, f"{where}.{key}") for key, item in value.items())
            strings: list[tuple[str, str]] = [(key, where) for key in value]
        elif isinstance(value, list):
            stack.extend((item, f"{where}.{i}") for i, item in enumerate(value))
            strings = []
        elif isinstance(value, str):
            strings = [(value, where)]
        else:
            strings = []
        for text, at in strings:
            if len(text) > MAX_DATA_STRING:
                raise fail(at, f"is {len(text)} characters long; a string in a task holds at most {MAX_DATA_STRING}")
            total += len(text)
            if total > MAX_DATA_TEXT:
                raise fail(field, f"holds more than {MAX_DATA_TEXT} characters of text")
