"""Tokens for CoNLL / IOB exports, right for Arabic and other scripts.

Tokens are made of whole grapheme clusters (``qistas.graphemes``): a family emoji, a flag,
a keycap or a letter with its harakat is never cut in two. Each cluster is classed by its
first code point. Tokens split on whitespace and on punctuation and symbols (Unicode
categories P* and S*: the Arabic comma ، and question mark ؟ are punctuation like their
Latin cousins; an emoji or a flag is a symbol, one token however many code points it
holds), and at every span boundary, so a span always covers whole tokens. Letters, numbers,
combining marks (Arabic harakat, category Mn), the tatweel (Lm) and format characters such
as the zero-width non-joiner (Cf) stay inside their word; a mark or a format character
after a symbol stays with it. Offsets are code points, like span offsets.

Two rules decide what the clusters alone would not:

* Whitespace never enters a token, even inside a cluster: Unicode joins a space with a
  mark that follows it (how an isolated mark is written) and a prepended concatenation
  mark (U+0600...) with a space after it. The non-space code points on either side form
  their own pieces.
* A span edge inside a cluster does not split it: the span takes the whole cluster.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

from qistas.graphemes import clusters


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


def _pieces(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, kind)`` of each grapheme cluster, with whitespace split out of it."""
    offset = 0
    for cluster in clusters(text):
        run = offset
        for i, char in enumerate(cluster, start=offset):
            if char.isspace():
                if run < i:
                    yield run, i, _kind(text[run])
                yield i, i + 1, "space"
                run = i + 1
        offset += len(cluster)
        if run < offset:
            yield run, offset, _kind(text[run])


def tokenize(text: str, cuts: Iterable[int] = ()) -> list[tuple[int, int]]:
    """``(start, end)`` code-point offsets of the tokens of ``text``; also split at ``cuts``.

    A cut inside a grapheme cluster is ignored.
    """
    cut = set(cuts)
    tokens: list[tuple[int, int]] = []
    start: int | None = None
    for i, end, kind in _pieces(text):
        if start is not None and (kind in ("space", "punct") or i in cut):
            tokens.append((start, i))
            start = None
        if kind == "join" and start is None and tokens and tokens[-1][1] == i and i not in cut:
            tokens[-1] = (tokens[-1][0], end)  # e.g. a format character after punctuation or a symbol
        elif kind == "punct":
            tokens.append((i, end))
        elif kind in ("word", "join") and start is None:
            start = i
    if start is not None:
        tokens.append((start, len(text)))
    return tokens


def iob(text: str, spans: list[dict[str, Any]]) -> list[tuple[str, int, int, str]]:
    """``(token, start, end, tag)`` with tags ``B-label``, ``I-label`` or ``O``.

    Where spans overlap, the one that starts first (then the longest) wins its tokens.
    Tokens are cut at every span edge that falls between clusters, so a token lies wholly
    inside or outside each span; one that a span only overlaps (an edge inside a cluster)
    belongs to it too, and an empty span owns nothing.
    """
    ordered = sorted(spans, key=lambda s: (s["start"], -s["end"]))
    cuts = [edge for s in ordered for edge in (s["start"], s["end"])]
    tagged: list[tuple[str, int, int, str]] = []
    current: dict[str, Any] | None = None
    for start, end in tokenize(text, cuts):
        owner = next((s for s in ordered if s["start"] < end and start < s["end"] and s["start"] < s["end"]), None)
        if owner is None:
            tag = "O"
        elif owner is current:
            tag = "I-" + owner["label"]
        else:
            tag = "B-" + owner["label"]
        current = owner
        tagged.append((text[start:end], start, end, tag))
    return tagged
