"""qistas/jsontext.py gives the standard library's values, whatever the JSON: msgspec where it can,
``json`` where msgspec refuses."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from qistas import jsontext

# What a task, answer or response can hold: JSON values, any text (Arabic, emoji, controls,
# bidi marks), integers beyond 64 bits, floats of every magnitude.
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@given(VALUES)
def test_values_written_read_back_as_the_standard_library_reads_them(value: Any) -> None:
    written = jsontext.dumps(value)
    assert json.loads(written) == value
    assert jsontext.loads(written) == value
    assert jsontext.loads(json.dumps(value)) == json.loads(json.dumps(value))  # stored text: escaped
    assert jsontext.lines([value, value]) == (written + "\n").encode() * 2


def test_text_is_compact_and_non_ascii_as_it_is() -> None:
    assert jsontext.dumps({"text": "وصل محمّد 👍🏽", "n": [1, 0.5]}) == '{"text":"وصل محمّد 👍🏽","n":[1,0.5]}'


def test_what_msgspec_refuses_the_standard_library_decides() -> None:
    assert math.isnan(jsontext.loads("NaN")) and jsontext.loads("[1e400]") == [math.inf]
    assert jsontext.loads('"\\ud800"') == json.loads('"\\ud800"')  # a lone surrogate, as json reads it
    assert jsontext.dumps({True: 1, None: 2}) == '{"true":1,"null":2}'


def test_a_line_msgspec_refuses_is_written_by_the_standard_library() -> None:
    assert jsontext.lines([{"a": "x" * 10, "b": {True: 1}}, {"c": 2}]) == \
        b'{"a":"xxxxxxxxxx","b":{"true":1}}\n{"c":2}\n'
