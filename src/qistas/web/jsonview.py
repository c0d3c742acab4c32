"""Customer JSON shown to people, safe for bidirectional text.

The block is left-to-right (JSON's own punctuation reads that way) and every string in it
is its own bidi isolate (``<bdi>``), so an Arabic or Hebrew value cannot pull the quotes,
colons and neighbouring keys around it into its direction. Bidi control characters (an
RLO, U+202E, reverses everything after it up to the end of the line) are shown as their
JSON escapes, ``\\u202e``: the reader sees them, and the text stays valid JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup, escape

# Unicode's Bidi_Control characters: ALM, LRM, RLM, LRE..RLO, LRI..PDI.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# A JSON string literal as json.dumps writes it (no alternative overlaps: linear).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _visible(literal: str) -> str:
    return _BIDI_CONTROLS.sub(lambda m: f"\\u{ord(m.group(0)):04x}", literal)


def json_html(value: Any) -> Markup:
    """``value`` as indented JSON: escaped text, each string in a ``<bdi>``."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    out: list[str] = []
    end = 0
    for match in _STRING.finditer(text):
        out.append(str(escape(text[end:match.start()])))
        out.append(f"<bdi>{escape(_visible(match.group(0)))}</bdi>")
        end = match.end()
    out.append(str(escape(text[end:])))
    return Markup("".join(out))
