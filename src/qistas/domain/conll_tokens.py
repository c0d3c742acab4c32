"""Tokens for CoNLL / IOB exports, right for Arabic and other scripts.

Tokens split on whitespace and on punctuation and symbols (Unicode categories P* and S*:
the Arabic comma ، and question mark ؟ are punctuation like their Latin cousins), and at
every span boundary, so a span always covers whole tokens. Letters, numbers, combining
marks (Arabic harakat, category Mn), the tatweel (Lm) and format characters such as the
zero-width non-joiner (Cf) stay inside their word; a mark or an emoji modifier after a
symbol stays with it. Offsets are code points, like span offsets.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any


def _kind(char: str) -> str:
    if char.isspace():
        return "space"
    category = unicodedata.category(char)
    # Marks, format characters (ZWJ, ZWNJ) and emoji skin-tone modifiers belong to what precedes.
    if category[0] == "M" or category == "Cf" or 0x1F3FB <= ord(char) <= 0x1F3FF:
        return "join"
    if category[0] in "PS":
        return "punct"
    return "word"


def tokenize(text: str, cuts: Iterable[int] = ()) -> list[tuple[int, int]]:
    """``(start, end)`` code-point offsets of the tokens of ``text``; also split at ``cuts``."""
    cut = set(cuts)
    tokens: list[tuple[int, int]] = []
    start: int | None = None
    for i, char in enumerate(text):
        kind = _kind(char)
        if start is not None and (kind in ("space", "punct") or i in cut):
            tokens.append((start, i))
            start = None
        if kind == "join" and start is None and tokens and tokens[-1][1] == i and i not in cut:
            tokens[-1] = (tokens[-1][0], i + 1)  # e.g. a mark or modifier after punctuation or a symbol
        elif kind == "punct":
            tokens.append((i, i + 1))
        elif kind in ("word", "join") and start is None:
            start = i
    if start is not None:
        tokens.append((start, len(text)))
    return tokens


def iob(text: str, spans: list[dict[str, Any]]) -> list[tuple[str, int, int, str]]:
    """``(token, start, end, tag)`` with tags ``B-label``, ``I-label`` or ``O``.

    Where spans overlap, the one that starts first (then the longest) wins its tokens.
    """
    ordered = sorted(spans, key=lambda s: (s["start"], -s["end"]))
    cuts = [edge for s in ordered for edge in (s["start"], s["end"])]
    tagged: list[tuple[str, int, int, str]] = []
    current: dict[str, Any] | None = None
    for start, end in tokenize(text, cuts):
        owner = next((s for s in ordered if s["start"] <= start and end <= s["end"]), None)
        if owner is None:
            tag = "O"
        elif owner is current:
            tag = "I-" + owner["label"]
        else:
            tag = "B-" + owner["label"]
        current = owner
        tagged.append((text[start:end], start, end, tag))
    return tagged
