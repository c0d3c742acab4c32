"""The task types: one module per type behind a registry, as ``web/static/widgets/`` is.

Every module of this package that defines a ``TASK_TYPE`` (an instance of a
:class:`~qistas.domain.tasktypes.base.TaskType` subclass) is a type; the registry finds them,
so adding a type means adding its module (and its widget), nothing else. See
``docs/task-types.md``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from functools import cache
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

from qistas.domain.tasktypes.base import Spec, TaskType, bounded_data, plain_response
from qistas.errors import Invalid
from qistas.quality.structured import canonical as answer_key  # equal answers, equal keys

__all__ = [
    "Spec", "TaskType", "all_types", "answer_key", "parse_spec", "plain_response", "spec_dict", "type_names",
    "type_of", "validate_answer", "validate_data",
]


@cache
def _registry() -> dict[str, TaskType[Any]]:
    found: dict[str, TaskType[Any]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        task_type = getattr(module, "TASK_TYPE", None)
        if isinstance(task_type, TaskType):
            if task_type.name in found:
                raise RuntimeError(f"two task types are named {task_type.name!r}")
            found[task_type.name] = task_type
    return found


def all_types() -> dict[str, TaskType[Any]]:
    """Every task type by name."""
    return _registry()


def type_names() -> tuple[str, ...]:
    """The names of the task types, classification first, then alphabetical."""
    names = sorted(_registry())
    return tuple(sorted(names, key=lambda n: n != "classification"))


def type_of(spec: Spec) -> TaskType[Any]:
    """The task type of a parsed spec."""
    return _registry()[spec.type]


@cache
def _spec_adapter() -> TypeAdapter[Any]:
    models = tuple(t.spec_model for t in _registry().values())
    union = Annotated[Union[models], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(union)


# Specs validated before, by their JSON text. Every submit validates its project's spec, and
# the label checks (look-alike scripts and letters) made that tens of microseconds; a
# spec object is frozen, so one can serve every request. Bounded: cleared when full.
_VALID_SPECS: dict[str, Spec] = {}
VALID_SPECS_KEPT = 256


def parse_spec(raw: Any) -> Spec:
    """Validate a project's task spec; return the type's own spec object."""
    try:
        key: str | None = json.dumps(raw, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # not JSON: validated (and refused) as it is
        key = None
    if key is not None and (known := _VALID_SPECS.get(key)) is not None:
        return known
    spec = _validate_spec(raw)
    if key is not None:
        if len(_VALID_SPECS) >= VALID_SPECS_KEPT:
            _VALID_SPECS.clear()
        _VALID_SPECS[key] = spec
    return spec


def _validate_spec(raw: Any) -> Spec:
    try:
        spec: Spec = _spec_adapter().validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = _spec_path(first["type"], list(first["loc"]))
        raise Invalid(f"{path}: {first['msg']}", details={"field": path}, reason=first["type"],
                      params=_plain_context(first.get("ctx"))) from None
    return spec


def _plain_context(ctx: dict[str, Any] | None) -> dict[str, str | int | float]:
    """The numbers and words of a validation error's context (``min_length``, ``le`` ...), without objects."""
    return {k: v for k, v in (ctx or {}).items() if isinstance(v, str | int | float) and not isinstance(v, bool)}


def _spec_path(error_type: str, loc: list[Any]) -> str:
    """The field a spec error is about, as the client wrote it (``task.labels``)."""
    if error_type in ("union_tag_invalid", "union_tag_not_found"):
        return "task.type"
    # A discriminated union puts the tag first (``classification.labels``): the client
    # never wrote it, so drop it.
    if loc and loc[0] in _registry():
        loc = loc[1:]
    return ".".join(str(p) for p in ("task", *loc))


def spec_dict(spec: Spec) -> dict[str, Any]:
    return spec.model_dump()


def validate_data(spec: Spec, data: Any) -> None:
    """Check that a task's data is an object with what its type needs."""
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object", details={"field": "data"})
    bounded_data(data)
    type_of(spec).validate_data(spec, data)


def validate_answer(spec: Spec, data: dict[str, Any], answer: Any) -> dict[str, Any]:
    """Validate an answer against the spec and the task's data; return it normalised."""
    return type_of(spec).validate_answer(spec, data, answer)
