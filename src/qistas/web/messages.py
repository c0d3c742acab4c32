"""Errors in words for people: what a page shows for a domain error, in the reader's language.

The API answers an error in its machine-readable shape (code, English message, details);
a page phrases the same error from the catalogue (``web/i18n``), trying in turn:

1. ``err.<reason>.<field>``, then ``err.<reason>``: the error says why (``too_short``,
   ``missing`` ... from a task spec's validation, or our own reasons such as ``int_range``),
   with its ``params`` (``min_length``, ``le`` ...);
2. ``err.<code>.<field>``: what this kind of error means on that field (``err.conflict.slug``);
3. ``err.<code>.field`` naming the field, then ``err.<code>``.

A field is named in the reader's language when it is one of our form fields (``field.<path>``),
else shown as it is. Every value put into a sentence sits in Unicode isolates (FSI … PDI), so
an identifier or a number keeps its own direction inside a right-to-left sentence: the
sentence stays plain text, fit for a page, an attribute or a script's ``textContent``.
"""

from __future__ import annotations

import re
import string
from typing import Any

from qistas.errors import QistasError
from qistas.web.i18n import Translator

FSI, PDI = "\u2068", "\u2069"
_INDEX = re.compile(r"\.\d+(?=\.|$)")


def isolate(value: object) -> str:
    return f"{FSI}{value}{PDI}"


def field_name(t: Translator, field: str) -> str:
    """A field in the reader's words (``task.labels.0`` is named as ``task.labels``), else as it is."""
    for key in ("field." + field, "field." + _INDEX.sub("", field)):
        if t.has(key):
            return isolate(t(key))
    return isolate(field)


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with its ``{name}`` places filled; a place without a value stays empty."""
    return string.Formatter().vformat(text, (), _Values(values))


def keys_for(*, code: str, reason: str | None, field: str | None) -> list[str]:
    """The catalogue keys that may phrase an error, most specific first."""
    keys: list[str] = []
    if reason:
        keys += [f"err.{reason}.{field}", f"err.{reason}"] if field else [f"err.{reason}"]
    if field:
        keys += [f"err.{code}.{field}", f"err.{code}.field"]
    return [*keys, f"err.{code}", "err.error"]


def script_strings(t: Translator) -> dict[str, str]:
    """What a script needs to phrase the API's errors itself (``static/messages.js``)."""
    return {**t.subset("err."), **t.subset("field.")}


def describe(t: Translator, exc: QistasError) -> str:
    """The error in a sentence of the reader's language."""
    details: Any = exc.details
    raw_field = details.get("field") if isinstance(details, dict) else None
    field = raw_field if isinstance(raw_field, str) and raw_field else None
    values = {k: isolate(v) for k, v in exc.params.items()}
    if field is not None:
        values["field"] = field_name(t, field)
    plain = _INDEX.sub("", field) if field else None
    for key in keys_for(code=exc.code, reason=exc.reason, field=plain):
        if t.has(key):
            return fill(t(key), values)
    return t("err.error")
