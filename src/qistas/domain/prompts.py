"""Prompt templates that turn a task's data into chat messages, and a model's answer back
into a task type's answer.

A template is ``{"system"?: str, "user": str}``; ``{field}`` stands for the task data's
field, ``{{`` and ``}}`` for literal braces. A field is a plain name: no attribute, index,
conversion or format spec (``{text.upper}``, ``{a[0]}``, ``{x!r}``, ``{x:>10}`` are refused),
so a template can read nothing but the task's data. A string value is put in as it is,
anything else as JSON. When the task spec names its data fields (``text_field``,
``prompt_field`` ...), a template may use only those; at run time a task whose data lacks
one fails with that reason and keeps its data and status.

The answer is the message's content parsed as one JSON object and validated by the task type
like an annotator's answer; a ``score`` in [0, 1] beside the answer's keys becomes the
prediction's score.
"""

from __future__ import annotations

import json
import re
from string import Formatter
from typing import Any

from qistas.domain.jsonsafe import check_storable
from qistas.domain.tasktypes import Spec, validate_answer
from qistas.errors import Invalid

MAX_TEMPLATE_CHARS = 20_000
ROLES = ("system", "user")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,99}")


class TemplateError(Exception):
    """A task's data does not fill the template; the reason is recorded for that task."""


def spec_fields(spec: Spec) -> set[str]:
    """The data fields a task spec names (``text_field``, ``a_field`` ...)."""
    found = set()
    for name, value in spec.model_dump().items():
        if name.endswith("_field") and isinstance(value, str):
            found.add(value)
    return found


def _pieces(text: str, where: str) -> list[tuple[str, str | None]]:
    try:
        parsed = list(Formatter().parse(text))
    except ValueError as exc:
        raise Invalid(f"{where}: {exc}", details={"field": where}, reason="template_braces") from None
    pieces = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (not _NAME.fullmatch(name) or spec or conversion):
            raise Invalid(f"{where}: {{{name}}} is not a field name; use {{field}} with a plain name, "
                          "and {{ }} for literal braces", details={"field": where}, reason="template_name",
                          params={"name": name})
        pieces.append((literal, name))
    return pieces


def check_template(raw: Any, spec: Spec | None, *, fields: set[str] | None = None) -> dict[str, str]:
    """The template, checked: its roles, length and that its fields are the spec's (or ``fields``)."""
    if not isinstance(raw, dict):
        raise Invalid("template must be an object with user and optionally system", details={"field": "template"})
    unknown = raw.keys() - set(ROLES)
    if unknown:
        name = sorted(unknown)[0]
        raise Invalid(f"template.{name} is not a known field", details={"field": f"template.{name}"})
    if not isinstance(raw.get("user"), str) or not raw["user"].strip():
        raise Invalid("template.user is required", details={"field": "template.user"}, reason="missing")
    known = fields if fields is not None else spec_fields(spec) if spec is not None else set()
    template = {}
    for role in ROLES:
        text = raw.get(role)
        if text is None:
            continue
        where = f"template.{role}"
        if not isinstance(text, str) or len(text) > MAX_TEMPLATE_CHARS:
            raise Invalid(f"{where} must be text of at most {MAX_TEMPLATE_CHARS} characters", details={"field": where},
                          reason="string_too_long", params={"max_length": MAX_TEMPLATE_CHARS})
        check_storable(text, where)
        for _, name in _pieces(text, where):
            if name is not None and (known or fields is not None) and name not in known:
                raise Invalid(f"{where}: {{{name}}} is not a known field; fields are "
                              f"{', '.join(sorted(known))}", details={"field": where}, reason="template_field",
                              params={"name": name, "fields": ", ".join(sorted(known))})
        template[role] = text
    return template


def render(template: dict[str, str], data: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages for one task; ``TemplateError`` when its data lacks a field."""
    messages = []
    for role in ROLES:
        text = template.get(role)
        if text is None:
            continue
        out = []
        for literal, name in _pieces(text, f"template.{role}"):
            out.append(literal)
            if name is None:
                continue
            if name not in data:
                raise TemplateError(f"the task's data has no field {name!r}")
            value = data[name]
            out.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        messages.append({"role": role, "content": "".join(out)})
    return messages


def parse_answer(content: Any, spec: Spec, data: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
    """(normalised answer, score) from a message's content; ``Invalid`` says why not."""
    if not isinstance(content, str):
        raise Invalid("the answer has no text content")
    text = content.strip()
    if text.startswith("```"):  # a fenced block, as some models write JSON even in JSON mode
        text = text.strip("`").removeprefix("json").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        raise Invalid(f"the answer is not JSON: {content[:200]!r}") from None
    if not isinstance(parsed, dict):
        raise Invalid("the answer is not a JSON object")
    score = parsed.pop("score", None)
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1):
        raise Invalid("the answer's score must be a number in [0, 1]")
    check_storable(parsed, "answer")
    return validate_answer(spec, data, parsed), None if score is None else float(score)
