"""Request and response bodies, named by role: ``XCreate``, ``XRead``, ``XPage``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from qistas.domain.jsonsafe import check_storable


class Incoming(BaseModel):
    """Base of every request body: unknown fields refused, and only storable values accepted.

    Python's json module accepts U+0000, lone surrogates, NaN and infinities, which the
    databases refuse or mangle; checked here, before any handler runs, they are a 422 naming
    the field instead of a 500 mid-transaction. ``Invalid`` is not a ``ValueError``, so it
    passes through pydantic to the error translator with its ``details.field`` intact.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            for key, value in raw.items():
                check_storable(value, str(key))
        return raw
