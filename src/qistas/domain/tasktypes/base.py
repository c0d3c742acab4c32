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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from qistas.errors import Invalid
from qistas.quality.structured import TaskResult, exact_match_score

Label = Annotated[str, Field(min_length=1, max_length=200)]
FieldName = Annotated[str, Field(min_length=1, max_length=100)]
Records = Callable[[], Iterator[dict[str, Any]]]


class Spec(BaseModel):
    """A project's task spec: ``type`` plus what the type needs. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str


class LabelledSpec(Spec):
    labels: list[Label] = Field(min_length=1, max_length=1000)

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        if len(set(labels)) != len(labels):
            raise PydanticCustomError("labels_not_unique", "labels must be unique")
        return labels


S = TypeVar("S", bound=Spec)


@dataclass(frozen=True)
class FormField:
    """One input of the console's new-project form, for one key of the spec.

    ``kind``: ``lines`` (a list, one item per line), ``text``, ``int``, ``bool``.
    ``label`` is the i18n key of its caption.
    """

    key: str
    kind: Literal["lines", "text", "int", "bool"]
    label: str
    default: Any = None


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


def number(value: Any, field: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        raise fail(field, "must be a number")
    return float(value)
