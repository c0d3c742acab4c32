"""Console forms that send what the API takes, field by field: the body checked by the API's
own schema, every problem kept (``FormErrors``), and each shown in the reader's words next to
the input it belongs to. A form sent back with problems keeps what was typed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from qistas.db.engine import Database
from qistas.db.unit_of_work import write
from qistas.errors import Invalid, QistasError
from qistas.web.i18n import Translator
from qistas.web.messages import describe

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class FormErrors(Exception):
    def __init__(self, errors: list[Invalid]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def invalid_of(error: Any) -> Invalid:
    """A pydantic validation error as the domain's ``Invalid``, its field and reason kept."""
    path = ".".join(str(p) for p in error["loc"])
    params = {k: v for k, v in (error.get("ctx") or {}).items()
              if isinstance(v, str | int | float) and not isinstance(v, bool)}
    return Invalid(f"{path}: {error['msg']}", details={"field": path}, reason=error["type"], params=params)


def validated(schema: type[M], body: dict[str, Any]) -> M:
    """The body checked by the API's schema; ``FormErrors`` with every problem if not."""
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        raise FormErrors([invalid_of(e) for e in exc.errors()]) from None


def field_errors(t: Translator, found: list[QistasError], input_of: Callable[[str], str]) -> dict[str, str]:
    """Each input's first problem in words; ``input_of`` names the input of an API field (``""``
    for none), and a problem that belongs to no input is kept under ``""``."""
    out: dict[str, str] = {}
    for exc in found:
        field = exc.details.get("field") if isinstance(exc.details, dict) else None
        out.setdefault(input_of(field) if isinstance(field, str) else "", describe(t, exc))
    return out


def submit(db: Database, work: Callable[[Session], T], t: Translator,
           input_of: Callable[[str], str]) -> tuple[T | None, dict[str, str]]:
    """Run the form's ``work`` in one write transaction: its result and no errors, or no result
    and the errors by input (a refusal that is not the form's, such as a 404, is raised)."""
    try:
        return write(db, work), {}
    except FormErrors as exc:
        return None, field_errors(t, list(exc.errors), input_of)
    except Invalid as exc:
        return None, field_errors(t, [exc], input_of)


def inputs_named(inputs: tuple[str, ...]) -> Callable[[str], str]:
    """``input_of`` for a form whose inputs are the API's fields with ``.`` as ``_``."""
    def input_of(field: str) -> str:
        name = field.replace(".", "_")
        return name if name in inputs else ""
    return input_of
